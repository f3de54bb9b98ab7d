using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using Kiln.Host;
using Kiln.Sandbox;
using Kiln.Tests.Support;
using Kiln.Vmm;

namespace Kiln.Tests.Sandbox;

/// <summary>
/// The driver with a guest: on the stand-in always, and on real Firecracker with the configured guest (the VM tier).
/// Every wait on the guest is for a line it prints, bounded by the target's boot timeout.
/// </summary>
public sealed class GuestTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<(FirecrackerHypervisor Driver, SandboxTarget Target, HypervisorConfig Config)> BootAsync(
        TempRoot root, string targetName, string id, VmmOwnership ownership = VmmOwnership.Owned, Func<FirecrackerHypervisor, Task>? beforeStart = null)
    {
        var target = SandboxTarget.For(targetName, root);
        var config = target.Config(root) with { BootTimeout = target.BootTimeout };
        var driver = new FirecrackerHypervisor(new FirecrackerHypervisorOptions { Ownership = ownership });
        try
        {
            await driver.CreateAsync(id, config, Ct);
            if (beforeStart is not null)
                await beforeStart(driver);
            await driver.StartAsync(Ct);
            await GuestConsole.WaitForAsync(driver, target.ReadyPattern, target.BootTimeout);
            return (driver, target, config);
        }
        catch
        {
            // A detached VMM outlives its driver by design: stop it before giving up on it.
            if (driver.Pid is not null)
                await driver.StopAsync(TimeSpan.Zero, CancellationToken.None);
            await driver.DisposeAsync();
            throw;
        }
    }

    [Theory]
    [MemberData(nameof(SandboxTarget.Names), MemberType = typeof(SandboxTarget))]
    public async Task The_guest_boots_with_the_kernel_command_line_kiln_built(string target)
    {
        using var root = new TempRoot();
        var (driver, _, _) = await BootAsync(root, target, "cmdline");
        await using var _d = driver;

        var console = await File.ReadAllTextAsync(driver.ConsolePath, Ct);

        var lines = Regex.Matches(console, @"Kernel command line: (.*)").Select(m => m.Groups[1].Value.TrimEnd('\r')).ToList();
        Assert.True(lines.Count == 1, $"the guest printed {lines.Count} 'Kernel command line:' lines (a 'quiet' guest prints none); its console:\n{Tail(console)}");
        var cmdline = lines[0];
        Assert.Contains("console=ttyS0", cmdline);
        Assert.Contains("reboot=k", cmdline);
        Assert.DoesNotContain("Running Firecracker", console);
        await driver.StopAsync(Ct);
    }

    [Theory]
    [MemberData(nameof(SandboxTarget.Names), MemberType = typeof(SandboxTarget))]
    public async Task The_guest_answers_over_vsock_through_firecrackers_hybrid_socket(string target)
    {
        using var root = new TempRoot();
        var uds = root.Combine("vsock.sock");
        var (driver, t, _) = await BootAsync(root, target, "vsock", beforeStart: d => d.AddDeviceAsync(new VsockDevice(3, uds), Ct));
        await using var _d = driver;
        if (t.VsockEchoPort is not { } port)
        {
            Assert.Skip("the guest has no vsock echo service (KILN_TEST_VSOCK_PORT=none)");
            return;
        }

        // The guest's service may start after its ready line: ask until it answers, within the boot timeout.
        var deadline = DateTime.UtcNow + t.BootTimeout;
        string? echoed = null;
        string last = "";
        while (echoed is null && DateTime.UtcNow < deadline)
        {
            using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(uds), Ct);
            await socket.SendAsync(Encoding.ASCII.GetBytes($"CONNECT {port}\n"), SocketFlags.None, Ct);
            last = await ReadLineAsync(socket);
            if (!last.StartsWith("OK ", StringComparison.Ordinal))
            {
                // Firecracker closes the connection while nothing listens on the port yet.
                await Task.Delay(500, Ct);
                continue;
            }

            await socket.SendAsync("hello from the host\n"u8.ToArray(), SocketFlags.None, Ct);
            echoed = await ReadLineAsync(socket);
        }

        Assert.True(echoed is not null, $"nothing answered on vsock port {port} within {t.BootTimeout} (last answer '{last.Trim()}'): the test guest " +
            "must run an echo service there (KILN_TEST_VSOCK_PORT names the port, 'none' skips this test)");
        Assert.Equal("hello from the host\n", echoed);
        await driver.StopAsync(Ct);
    }

    [Theory]
    [MemberData(nameof(SandboxTarget.Names), MemberType = typeof(SandboxTarget))]
    public async Task Ctrl_Alt_Del_makes_the_guest_reboot_and_firecracker_exit_on_its_own(string target)
    {
        using var root = new TempRoot();
        var (driver, t, _) = await BootAsync(root, target, "cad");
        await using var _d = driver;
        var identity = ProcFs.TryGetIdentity(driver.Pid!.Value)!;

        await driver.Api!.SendCtrlAltDelAsync(Ct);

        // reboot=k on the command line: the guest's reboot ends the VMM (its init must handle Ctrl-Alt-Del).
        var clock = Stopwatch.StartNew();
        // Until the driver sees the exit too: /proc shows the VMM a zombie a moment before its pidfd reports it gone.
        while ((ProcFs.IsSameProcess(identity) || driver.State != SandboxState.Exited) && clock.Elapsed < t.BootTimeout)
            await Task.Delay(100, Ct);
        Assert.False(ProcFs.IsSameProcess(identity), $"firecracker still ran {t.BootTimeout} after Ctrl-Alt-Del; the console showed:\n" +
            Tail(await File.ReadAllTextAsync(driver.ConsolePath, Ct)));
        Assert.Equal(SandboxState.Exited, driver.State);
        await driver.StopAsync(Ct);
        await driver.CleanupAsync(Ct);
        Assert.False(Directory.Exists(driver.SandboxDirectory));
    }

    [Theory]
    [MemberData(nameof(SandboxTarget.Names), MemberType = typeof(SandboxTarget))]
    public async Task A_vmm_killed_behind_the_drivers_back_is_reported_exited_and_cleaned_up(string target)
    {
        using var root = new TempRoot();
        var (driver, _, _) = await BootAsync(root, target, "killed");
        await using var _d = driver;
        var pid = driver.Pid!.Value;
        var identity = ProcFs.TryGetIdentity(pid)!;

        using (var vmm = Process.GetProcessById(pid))
        {
            vmm.Kill();
            await vmm.WaitForExitAsync(Ct);
        }

        Assert.False(ProcFs.IsSameProcess(identity));
        Assert.Equal(SandboxState.Exited, driver.State);
        await driver.StopAsync(Ct);
        Assert.False(File.Exists(driver.SocketPath));
        await driver.CleanupAsync(Ct);
        Assert.False(Directory.Exists(driver.SandboxDirectory));
    }

    [Theory]
    [MemberData(nameof(SandboxTarget.Names), MemberType = typeof(SandboxTarget))]
    public async Task A_detached_vm_is_reattached_by_another_driver_whose_hot_plug_the_guest_sees_and_which_stops_it(string target)
    {
        using var root = new TempRoot();
        var (first, t, config) = await BootAsync(root, target, "detached", VmmOwnership.Detached);
        var pid = first.Pid!.Value;
        var slot0 = first.PoolSlots[0].GuestDevice.Replace("/dev/", "", StringComparison.Ordinal);
        var seen = GuestConsole.Length(first);
        await first.DisposeAsync();
        var identity = ProcFs.TryGetIdentity(pid);
        Assert.NotNull(identity);

        await using var second = await FirecrackerHypervisor.OpenAsync(config.RootDirectory, "detached", cancellationToken: Ct);
        try
        {
            Assert.Equal(SandboxState.Running, second.State);
            await second.HotplugAddAsync(new BlockDevice(LifecycleTests.MakeDisk(root, "late.img", 2)), Ct);
            await GuestConsole.WaitForAsync(second, new Regex($@"{slot0}: detected capacity change from \d+ to 4096\b"), t.BootTimeout, seen);
            await second.PauseAsync(Ct);
            await second.ResumeAsync(Ct);
            Assert.Equal(2, (await second.GetVcpuThreadIdsAsync(Ct)).Count);

            await second.StopAsync(Ct);

            Assert.False(ProcFs.IsSameProcess(identity));
            Assert.Equal(SandboxState.Stopped, second.State);
        }
        finally
        {
            // A detached VMM outlives its driver by design: never leave it behind when an assertion fails.
            if (ProcFs.IsSameProcess(identity))
                await second.StopAsync(TimeSpan.Zero, CancellationToken.None);
        }
    }

    private static async Task<string> ReadLineAsync(Socket socket)
    {
        var line = new StringBuilder();
        var one = new byte[1];
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(10));
        try
        {
            while (!line.ToString().EndsWith('\n') && await socket.ReceiveAsync(one, SocketFlags.None, timeout.Token) == 1)
                line.Append((char)one[0]);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException && !Ct.IsCancellationRequested)
        {
            // Refused, reset or silent: the caller sees what arrived.
        }

        return line.ToString();
    }

    private static string Tail(string s) => s.Length <= 4000 ? s : s[^4000..];
}
