// Sets up and tears down a sandbox's network: its own network namespace (or the user's) with the TAP inside; for NAT
// a veth pair to the host namespace, a default route and masquerading in the sandbox namespace, and per-sandbox
// chains in Kiln's own nftables table (`ip kiln`) of the host namespace. Everything planned is recorded before it is
// made, so a stop, a failed start, or a sweep after the owner was killed removes exactly what Kiln made.
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Kiln.Host.Network;

/// <summary>Options of <see cref="SandboxNetworks"/>.</summary>
public sealed record SandboxNetworksOptions
{
    /// <summary>Where the network records (and TAP ownership records) live. Default <c>/run/kiln/net</c>.</summary>
    public string StateDirectory { get; init; } = "/run/kiln/net";

    /// <summary>The namespace that plays "the host" (veth host ends, NAT, Kiln's nftables table); null: Kiln's own. Tests give one of theirs.</summary>
    public string? HostNamespacePath { get; init; }

    /// <summary>The prefix of the namespaces Kiln creates (<c>/run/netns/&lt;prefix&gt;&lt;sandbox id&gt;</c>). Default <c>kiln-</c>.</summary>
    public string NamespacePrefix { get; init; } = "kiln-";

    /// <summary>Kiln's nftables table (family ip) in the host namespace. Default <c>kiln</c>.</summary>
    public string NftTable { get; init; } = "kiln";

    /// <summary>The /16 that NAT link subnets (/30 per sandbox) come from. Default 10.200.0.0.</summary>
    public System.Net.IPAddress LinkPool { get; init; } = System.Net.IPAddress.Parse("10.200.0.0");

    /// <summary>The clock for lock waits.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}

/// <summary>Creates and removes sandboxes' networks.</summary>
public sealed class SandboxNetworks
{
    private const string NetnsDirectory = "/run/netns";
    private readonly SandboxNetworksOptions _options;
    private readonly TapProvisioner _taps;

    /// <summary>Networks recorded under <see cref="SandboxNetworksOptions.StateDirectory"/>.</summary>
    public SandboxNetworks(SandboxNetworksOptions? options = null)
    {
        _options = options ?? new SandboxNetworksOptions();
        _taps = new TapProvisioner(new TapProvisionerOptions { StateDirectory = _options.StateDirectory });
    }

    /// <summary>Tests: called after each step (<c>namespace</c>, <c>tap</c>, <c>veth</c>, <c>done</c>) so a failure can be injected there.</summary>
    internal Action<string>? AfterStep { get; set; }

    /// <summary>The TAP provisioner these networks use (ownership records in the same directory).</summary>
    public TapProvisioner Taps => _taps;

    /// <summary>
    /// Sets up the network <paramref name="spec"/> asks for. On any failure everything made so far is removed and the
    /// error rethrown. The owner is the calling process until <see cref="TransferOwnershipAsync"/> names the VMM.
    /// </summary>
    /// <exception cref="NetworkConfigurationException">A bad id or spec, before anything changes.</exception>
    /// <exception cref="NetworkException">The sandbox already has a network, or a TAP/host tool failed.</exception>
    public async Task<SandboxNetworkInfo?> SetUpAsync(string sandboxId, SandboxNetworkSpec spec, CancellationToken cancellationToken = default)
    {
        ValidateId(sandboxId);
        ArgumentNullException.ThrowIfNull(spec);
        spec.Validate();
        if (spec.Mode == NetworkMode.None)
            return null;
        if (spec.Mode == NetworkMode.Namespace && !File.Exists(spec.NamespacePath))
            throw new NetworkConfigurationException(nameof(SandboxNetworkSpec.NamespacePath), $"'{spec.NamespacePath}' does not exist");

        var info = Plan(sandboxId, spec)!;

        using (var gate = await NetworkStateLock.AcquireAsync(_options.StateDirectory, _options.TimeProvider, cancellationToken).ConfigureAwait(false))
        {
            if (Read(sandboxId) is not null)
                throw new NetworkException($"Sandbox '{sandboxId}' already has a network; tear it down first.");
            if (spec.Mode == NetworkMode.Nat)
                info = WithNatPlan(info);
            // Names that are taken now are someone else's: refused before the plan is recorded, so that teardown
            // (which removes what the record names) can never remove them.
            if (info.NamespaceCreatedByKiln && File.Exists(info.NamespacePath))
                throw new NetworkException($"The namespace {info.NamespacePath} exists already; Kiln does not take over a namespace it did not create.");
            if (info.HostVeth is { } veth && await TapProvisioner.ExistsAsync(veth, _options.HostNamespacePath, cancellationToken).ConfigureAwait(false))
                throw new NetworkException($"A device named {veth} exists in the host namespace; Kiln does not take over a device it did not create.");
            // Recorded before anything is made: a crash from here on leaves a record that teardown and sweeps follow.
            Write(info);
        }

        try
        {
            if (info.NamespaceCreatedByKiln)
            {
                await IpAsync(_options.HostNamespacePath, cancellationToken, "netns", "add", _options.NamespacePrefix + sandboxId).ConfigureAwait(false);
                await IpAsync(info.NamespacePath, cancellationToken, "link", "set", "dev", "lo", "up").ConfigureAwait(false);
                AfterStep?.Invoke("namespace");
            }
            await _taps.CreateAsync(new TapSpec(info.TapName!) { NetworkNamespacePath = info.NamespacePath, HostAddress = info.TapAddress }, sandboxId, cancellationToken).ConfigureAwait(false);
            AfterStep?.Invoke("tap");
            if (spec.Mode == NetworkMode.Nat)
                await SetUpNatAsync(info, cancellationToken).ConfigureAwait(false);
            AfterStep?.Invoke("done");
            return info;
        }
        catch (Exception e)
        {
            // The set-up's failure is what the caller gets; a teardown that fails too rides along (CleanupFailures).
            await CleanupFailures.RunAsync(e, () => TearDownAsync(sandboxId, CancellationToken.None)).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// What <see cref="SetUpAsync"/> will make, without making it (null for mode None): the namespace, TAP name, MAC,
    /// addresses and kernel <c>ip=</c> argument a machine description needs before the VMM starts.
    /// </summary>
    /// <exception cref="NetworkConfigurationException">A bad id or spec.</exception>
    public SandboxNetworkInfo? Plan(string sandboxId, SandboxNetworkSpec spec)
    {
        ValidateId(sandboxId);
        ArgumentNullException.ThrowIfNull(spec);
        spec.Validate();
        if (spec.Mode == NetworkMode.None)
            return null;
        var me = Environment.ProcessId;
        return new SandboxNetworkInfo
        {
            SandboxId = sandboxId,
            Mode = spec.Mode,
            NamespacePath = spec.Mode == NetworkMode.Namespace ? spec.NamespacePath : Path.Combine(NetnsDirectory, _options.NamespacePrefix + sandboxId),
            NamespaceCreatedByKiln = spec.Mode != NetworkMode.Namespace,
            TapName = spec.TapName ?? (spec.Mode == NetworkMode.Namespace ? "kt" + Hash(sandboxId, 10) : "tap0"),
            TapAddress = spec.TapAddress,
            GuestAddress = spec.GuestAddress,
            GuestMac = spec.GuestMac?.ToLowerInvariant() ?? GuestMac.ForSandbox(sandboxId),
            OwnerPid = me,
            OwnerStartTime = ProcFs.TryGetStartTime(me) ?? 0,
        };
    }

    /// <summary>Makes <paramref name="pid"/> (the VMM) the process whose death lets <see cref="SweepAsync(string, CancellationToken)"/> remove this network.</summary>
    public async Task TransferOwnershipAsync(string sandboxId, int pid, CancellationToken cancellationToken = default)
    {
        ValidateId(sandboxId);
        using var gate = await NetworkStateLock.AcquireAsync(_options.StateDirectory, _options.TimeProvider, cancellationToken).ConfigureAwait(false);
        if (Read(sandboxId) is { } info)
            Write(info with { OwnerPid = pid, OwnerStartTime = ProcFs.TryGetStartTime(pid) ?? 0 });
    }

    /// <summary>The network recorded for a sandbox, or null.</summary>
    public SandboxNetworkInfo? Get(string sandboxId)
    {
        ValidateId(sandboxId);
        return Read(sandboxId);
    }

    /// <summary>Every recorded network.</summary>
    public IReadOnlyList<SandboxNetworkInfo> List() =>
        !Directory.Exists(_options.StateDirectory) ? []
            : [.. Directory.EnumerateFiles(_options.StateDirectory, "sandbox-*.json").Select(ReadFile).OfType<SandboxNetworkInfo>()];

    /// <summary>
    /// Removes everything recorded for the sandbox — nftables chains, the veth pair, the TAP, the namespace Kiln
    /// created — each step tolerating what is already gone, then the record. A sandbox without a network is a no-op.
    /// </summary>
    /// <exception cref="HostCommandException">A host tool failed; the record stays so that a retry finishes the job.</exception>
    public async Task TearDownAsync(string sandboxId, CancellationToken cancellationToken = default)
    {
        ValidateId(sandboxId);
        using var gate = await NetworkStateLock.AcquireAsync(_options.StateDirectory, _options.TimeProvider, cancellationToken).ConfigureAwait(false);
        if (Read(sandboxId) is { } info)
            await TearDownLockedAsync(info, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Tears down every network whose owner process is gone (a killed Kiln, a VMM that died); returns their ids.
    /// Each owner is looked at under the state lock, so a network set up meanwhile by a live process is never taken.
    /// </summary>
    /// <exception cref="HostCommandException">A host tool failed; that network's record stays so that a retry finishes the job.</exception>
    public async Task<IReadOnlyList<string>> SweepAsync(CancellationToken cancellationToken = default)
    {
        var removed = new List<string>();
        foreach (var info in List())
        {
            if (await SweepAsync(info.SandboxId, cancellationToken).ConfigureAwait(false))
                removed.Add(info.SandboxId);
        }
        return removed;
    }

    /// <summary>
    /// Tears down the sandbox's network if its owner process is gone (the VMM died or was killed, or the Kiln that
    /// was starting it); true when it did. A network whose owner lives, or no network, is left as it is.
    /// </summary>
    /// <exception cref="HostCommandException">A host tool failed; the record stays so that a retry finishes the job.</exception>
    public async Task<bool> SweepAsync(string sandboxId, CancellationToken cancellationToken = default)
    {
        ValidateId(sandboxId);
        if (!File.Exists(RecordPath(sandboxId)))
            return false;
        using var gate = await NetworkStateLock.AcquireAsync(_options.StateDirectory, _options.TimeProvider, cancellationToken).ConfigureAwait(false);
        if (Read(sandboxId) is not { } info || IsOwnerAlive(info))
            return false;
        await TearDownLockedAsync(info, cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>Whether the process that owns <paramref name="info"/> still runs (PID and start time: a reused PID does not count).</summary>
    public static bool IsOwnerAlive(SandboxNetworkInfo info)
    {
        ArgumentNullException.ThrowIfNull(info);
        return ProcFs.TryGetStartTime(info.OwnerPid) is { } started && started == info.OwnerStartTime;
    }

    // Called under the state lock.
    private async Task TearDownLockedAsync(SandboxNetworkInfo info, CancellationToken cancellationToken)
    {
        var sandboxId = info.SandboxId;
        if (info.NftChains.Count > 0)
            await RemoveNftChainsAsync(info, cancellationToken).ConfigureAwait(false);
        if (info.HostVeth is { } veth && await TapProvisioner.ExistsAsync(veth, _options.HostNamespacePath, cancellationToken).ConfigureAwait(false))
            await IpAsync(_options.HostNamespacePath, cancellationToken, "link", "del", "dev", veth).ConfigureAwait(false);
        if (info.TapName is { } tap && _taps.OwnerOf(tap, info.NamespacePath) == sandboxId)
            await _taps.RemoveAsync(tap, sandboxId, info.NamespacePath, cancellationToken).ConfigureAwait(false);
        if (info.NamespaceCreatedByKiln && info.NamespacePath is { } ns && File.Exists(ns))
            await IpAsync(_options.HostNamespacePath, cancellationToken, "netns", "del", Path.GetFileName(ns)).ConfigureAwait(false);
        File.Delete(RecordPath(sandboxId));
    }

    // The NAT plan: a /30 of the link pool no other recorded network uses (probing from the id's hash), veth names
    // from the id's hash (15 bytes at most), and the two chains in Kiln's table. Called under the state lock.
    private SandboxNetworkInfo WithNatPlan(SandboxNetworkInfo info)
    {
        var used = List().Where(n => n.HostVethAddress is not null).Select(n => n.HostVethAddress!.Address).ToHashSet();
        var pool = new InterfaceAddress(_options.LinkPool, 30);
        var start = (int)(BitConverter.ToUInt32(SHA256.HashData(Encoding.UTF8.GetBytes(info.SandboxId))) % 16384);
        for (var i = 0; i < 16384; i++)
        {
            var hostEnd = pool.Plus((start + i) % 16384 * 4 + 1);
            if (used.Contains(hostEnd.Address))
                continue;
            var suffix = Hash(info.SandboxId, 10);
            return info with
            {
                HostVeth = "kv" + suffix,
                HostVethAddress = hostEnd,
                NamespaceVeth = "kn" + suffix,
                NamespaceVethAddress = hostEnd.Plus(1),
                NftChains = ["nat-" + info.SandboxId, "fwd-" + info.SandboxId],
            };
        }
        throw new NetworkException($"No free /30 left in {_options.LinkPool}/16 for NAT links.");
    }

    private async Task SetUpNatAsync(SandboxNetworkInfo info, CancellationToken ct)
    {
        var host = _options.HostNamespacePath;
        var ns = info.NamespacePath!;
        var nsName = Path.GetFileName(ns);
        await IpAsync(host, ct, "link", "add", info.HostVeth!, "type", "veth", "peer", "name", info.NamespaceVeth!, "netns", nsName).ConfigureAwait(false);
        await IpAsync(host, ct, "addr", "add", info.HostVethAddress!.ToString(), "dev", info.HostVeth!).ConfigureAwait(false);
        await IpAsync(host, ct, "link", "set", "dev", info.HostVeth!, "up").ConfigureAwait(false);
        await IpAsync(ns, ct, "addr", "add", info.NamespaceVethAddress!.ToString(), "dev", info.NamespaceVeth!).ConfigureAwait(false);
        await IpAsync(ns, ct, "link", "set", "dev", info.NamespaceVeth!, "up").ConfigureAwait(false);
        await IpAsync(ns, ct, "route", "add", "default", "via", info.HostVethAddress.Address.ToString()).ConfigureAwait(false);
        AfterStep?.Invoke("veth");
        // Forwarding is per namespace: on in the sandbox's (guest → veth) and in the host's (veth → world).
        await HostCommand.RunAsync("sysctl", ["-q", "-w", "net.ipv4.ip_forward=1"], ns, ct).ConfigureAwait(false);
        await HostCommand.RunAsync("sysctl", ["-q", "-w", "net.ipv4.ip_forward=1"], host, ct).ConfigureAwait(false);
        // Inside the sandbox namespace the guest's network is masqueraded onto the veth (gone with the namespace).
        await HostCommand.RunAsync("nft", ["-f", "-"], ns, ct, stdin:
            $"""
            add table ip {_options.NftTable}
            add chain ip {_options.NftTable} postrouting {"{"} type nat hook postrouting priority srcnat; policy accept; {"}"}
            add rule ip {_options.NftTable} postrouting oifname "{info.NamespaceVeth}" ip saddr {info.GuestAddress!.Network} masquerade
            """).ConfigureAwait(false);
        // In the host namespace: this sandbox's own chains in Kiln's table, added in one transaction.
        using var gate = await NetworkStateLock.AcquireAsync(_options.StateDirectory, _options.TimeProvider, ct).ConfigureAwait(false);
        await HostCommand.RunAsync("nft", ["-f", "-"], host, ct, stdin:
            $"""
            add table ip {_options.NftTable}
            add chain ip {_options.NftTable} {info.NftChains[0]} {"{"} type nat hook postrouting priority srcnat; policy accept; {"}"}
            add rule ip {_options.NftTable} {info.NftChains[0]} ip saddr {info.NamespaceVethAddress.Address} oifname != "{info.HostVeth}" masquerade
            add chain ip {_options.NftTable} {info.NftChains[1]} {"{"} type filter hook forward priority filter; policy accept; {"}"}
            add rule ip {_options.NftTable} {info.NftChains[1]} iifname "{info.HostVeth}" accept
            add rule ip {_options.NftTable} {info.NftChains[1]} oifname "{info.HostVeth}" ct state established,related accept
            add rule ip {_options.NftTable} {info.NftChains[1]} oifname "{info.HostVeth}" drop
            """).ConfigureAwait(false);
    }

    // Called under the state lock. Removes this sandbox's chains, and Kiln's table once no chain is left in it.
    private async Task RemoveNftChainsAsync(SandboxNetworkInfo info, CancellationToken ct)
    {
        var host = _options.HostNamespacePath;
        string listing;
        try
        {
            listing = await HostCommand.RunAsync("nft", ["list", "table", "ip", _options.NftTable], host, ct).ConfigureAwait(false);
        }
        catch (HostCommandException e) when (e.StandardError.Contains("No such file or directory", StringComparison.Ordinal))
        {
            return;
        }
        var present = info.NftChains.Where(c => listing.Contains($"chain {c} {{", StringComparison.Ordinal)).ToList();
        var script = new StringBuilder();
        foreach (var chain in present)
            script.Append(CultureInfo.InvariantCulture, $"flush chain ip {_options.NftTable} {chain}\ndelete chain ip {_options.NftTable} {chain}\n");
        var others = listing.Split('\n').Count(l => l.TrimStart().StartsWith("chain ", StringComparison.Ordinal)) - present.Count;
        if (others == 0)
            script.Append(CultureInfo.InvariantCulture, $"delete table ip {_options.NftTable}\n");
        if (script.Length > 0)
            await HostCommand.RunAsync("nft", ["-f", "-"], host, ct, stdin: script.ToString()).ConfigureAwait(false);
    }

    private static void ValidateId(string sandboxId)
    {
        // It becomes part of a namespace name, a record file name and nftables chain names.
        if (string.IsNullOrEmpty(sandboxId) || sandboxId.Length > 64 || sandboxId is "." or ".."
            || !sandboxId.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.'))
            throw new NetworkConfigurationException("SandboxId", $"'{sandboxId}' must be 1-64 letters, digits, '_', '-' or '.'");
    }

    private static string Hash(string text, int length) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..length];

    private string RecordPath(string sandboxId) => Path.Combine(_options.StateDirectory, $"sandbox-{sandboxId}.json");

    private SandboxNetworkInfo? Read(string sandboxId) => ReadFile(RecordPath(sandboxId));

    private static SandboxNetworkInfo? ReadFile(string path)
    {
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllText(path), NetworkJsonContext.Default.SandboxNetworkInfo);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or JsonException)
        {
            return null;
        }
    }

    private void Write(SandboxNetworkInfo info)
    {
        Directory.CreateDirectory(_options.StateDirectory);
        var path = RecordPath(info.SandboxId);
        var temp = path + ".tmp";
        File.WriteAllText(temp, JsonSerializer.Serialize(info, NetworkJsonContext.Default.SandboxNetworkInfo));
        File.Move(temp, path, overwrite: true);
    }

    private static Task<string> IpAsync(string? netns, CancellationToken ct, params string[] args) => HostCommand.RunAsync("ip", args, netns, ct);
}
