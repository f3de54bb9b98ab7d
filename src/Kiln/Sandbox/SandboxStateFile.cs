// The sandbox directory's record of itself: enough for a driver in another process (the owner restarted, or the
// CLI) to find, inspect, hot-plug into and stop the VMM. Written atomically (temp file + rename) so a reader never
// sees half a file.
using System.Text.Json;
using System.Text.Json.Serialization;
using Kiln.Vmm;

namespace Kiln.Sandbox;

/// <summary>The persisted state of one sandbox (<c>state.json</c>).</summary>
internal sealed record SandboxStateFile
{
    public const int CurrentVersion = 1;

    public int Version { get; init; } = CurrentVersion;
    public required string Id { get; init; }
    public required HypervisorConfig Config { get; init; }
    public SandboxState State { get; init; }
    public VmmOwnership Ownership { get; init; }
    public int? Pid { get; init; }

    /// <summary>/proc/PID/stat field 22 at launch: with the PID, who the VMM is (a pidfd cannot be persisted).</summary>
    public ulong? StartTimeTicks { get; init; }

    public string? ExecutablePath { get; init; }

    /// <summary>A detached VMM's console keeper (see <see cref="ConsoleKeeper"/>): PID, start time and executable.</summary>
    public int? ConsoleKeeperPid { get; init; }
    public ulong? ConsoleKeeperStartTimeTicks { get; init; }
    public string? ConsoleKeeperExecutablePath { get; init; }

    /// <summary>The console keeper's identity, when one was started.</summary>
    [JsonIgnore]
    public Kiln.Host.ProcessIdentity? ConsoleKeeper => ConsoleKeeperPid is { } pid && ConsoleKeeperStartTimeTicks is { } ticks
        ? new Kiln.Host.ProcessIdentity(pid, ticks, ConsoleKeeperExecutablePath)
        : null;

    /// <summary>
    /// Set while a VMM is being launched and not yet recorded (clock ticks since boot, taken just before the launch): an
    /// owner that dies in between leaves a record saying Starting with no PID, and this is how another driver still
    /// finds that VMM (<see cref="SandboxCatalog.FindUnrecordedVmm"/>). Null once the PID is recorded.
    /// </summary>
    public ulong? VmmSpawnedNotBefore { get; init; }

    /// <summary>The jail of a jailed VMM: its paths, identity, cgroups and the files exposed in it.</summary>
    public JailRecord? Jail { get; init; }
    public required string SocketPath { get; init; }
    public required string ConsolePath { get; init; }
    public DateTimeOffset? StartedAt { get; init; }

    /// <summary>What the running guest has after the last resize (kiln mem); null: its configured memory.</summary>
    public int? GuestMemoryMiB { get; init; }

    /// <summary>
    /// True when a pause or resume got no answer (cancelled, timed out) from a VMM that lives on: Firecracker may or
    /// may not have carried it out, and <see cref="State"/> is what was known before. The next operation of any driver
    /// asks Firecracker and records the answer. Absent otherwise.
    /// </summary>
    public bool? StateInDoubt { get; init; }

    /// <summary>How the VMM ended, once the record says Exited and someone knew: its exit code…</summary>
    public int? ExitCode { get; init; }

    /// <summary>…or the signal that killed it.</summary>
    public int? ExitSignal { get; init; }
    /// <summary>The block pool's slots. Absent from a hand-written or truncated record: then none are assigned.</summary>
    public IReadOnlyList<PoolSlot> PoolSlots { get => field ?? []; init; } = [];

    /// <summary>The boot-time devices, in start order. Absent from files written before it existed: then none.</summary>
    /// <remarks>The generated deserializer sets every init property, a missing one to null, so the getter falls back.</remarks>
    public IReadOnlyList<HypervisorDevice> Devices { get => field ?? []; init; } = [];

    /// <summary>Reads the state file, or null when there is none.</summary>
    /// <remarks>
    /// Read whole and parsed from memory, on the caller's thread: a few KiB from the page cache. An asynchronous
    /// FileStream would do the same read on a thread-pool thread (.NET has no asynchronous file I/O on Linux) and the
    /// streaming deserializer would add its own async state; both measured as a few percent of a start's CPU in
    /// bench --density.
    /// </remarks>
    public static Task<SandboxStateFile?> TryReadAsync(string path, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        byte[] json;
        try
        {
            json = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return Task.FromResult<SandboxStateFile?>(null);
        }
        try
        {
            var state = JsonSerializer.Deserialize(json, SandboxStateJsonContext.Default.SandboxStateFile)
                ?? throw new SandboxException($"The state file {path} is empty.");
            // A newer Kiln may record things this one would drop on its next write; better to stop than to lose them.
            if (state.Version > CurrentVersion)
                throw new SandboxException($"The state file {path} has version {state.Version}; this Kiln reads up to version {CurrentVersion}. Use a newer Kiln for this sandbox.");
            return Task.FromResult<SandboxStateFile?>(state);
        }
        // NotSupportedException: what System.Text.Json throws for a device whose "kind" discriminator is missing or
        // not first (found by ParserPropertyTests' mutations).
        catch (Exception e) when (e is JsonException or NotSupportedException)
        {
            throw new SandboxException($"The state file {path} is not valid: {e.Message}", e);
        }
    }

    /// <summary>Writes the state file atomically: a reader sees the old or the new file, never a mix.</summary>
    /// <exception cref="SandboxException">The file could not be written (a full or read-only file system, say); the
    /// old file is unchanged and no temporary file is left.</exception>
    /// <param name="path">The state file.</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <param name="inPlaceWhenFull">A record that says a VMM has ended (a stop's): on a full file system it is written
    /// over the old one when not larger (<see cref="TryOverwriteInPlace"/>), since no operation can be undone to keep
    /// the old record true. Every other write fails there, and its operation is undone.</param>
    public async Task WriteAsync(string path, CancellationToken cancellationToken, bool inPlaceWhenFull = false)
    {
        try
        {
            await UnsafeWriteAsync(path, inPlaceWhenFull, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Found by DiskFaultTests: a raw IOException escaped from create and start on a full file system.
            throw new SandboxException($"The state file {path} could not be written: {e.Message}", e);
        }
    }

    private Task UnsafeWriteAsync(string path, bool inPlaceWhenFull, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        // Serialized in memory and written in one call on the caller's thread (see TryReadAsync: an asynchronous
        // FileStream would only move the same write to a thread-pool thread).
        var json = JsonSerializer.SerializeToUtf8Bytes(this, SandboxStateJsonContext.Default.SandboxStateFile);
        var temp = path + ".tmp-" + Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture) + "-" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 0))
            {
                stream.Write(json);
                // No fsync: the state lives on a per-boot runtime directory (tmpfs) and describes processes that do
                // not survive a reboot either; the rename alone makes the update atomic for readers. (An fsync here
                // cost ~10 ms per start on this machine.)
            }
            File.Move(temp, path, overwrite: true);
        }
        catch (Exception e)
        {
            // Nothing half-written stays: a full file system fails the write (or the close that flushes it).
            CleanupFailures.Run(e, () => File.Delete(temp));
            if (inPlaceWhenFull && e is IOException { HResult: NoSpaceLeft } && TryOverwriteInPlace(path, json))
                return Task.CompletedTask;
            throw;
        }
        return Task.CompletedTask;
    }

    private const int NoSpaceLeft = 28; // ENOSPC, which .NET gives as the IOException's HResult on Linux

    /// <summary>
    /// On a full file system, a record no larger than the one there is written over it, padded with spaces (JSON's
    /// trailing whitespace), in one write(2) at offset 0: the file keeps its size and its blocks, so nothing new is
    /// allocated. Found by DiskFaultTests: a stop on a full disk ended the VMM and then could not record it, leaving
    /// the record claiming a VMM. One write of a few KiB replaces the page-cache bytes under the inode's lock, so a
    /// reader sees the old or the new record; a larger record is refused (false) rather than truncated.
    /// </summary>
    private static bool TryOverwriteInPlace(string path, byte[] json)
    {
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0);
            if (json.Length > file.Length)
                return false;
            var padded = new byte[file.Length];
            json.CopyTo(padded, 0);
            padded.AsSpan(json.Length).Fill((byte)' ');
            file.Write(padded);
            return true;
        }
        catch (FileNotFoundException)
        {
            return false;
        }
    }
}

/// <summary>
/// The state file's JSON contract. Kiln's own file format, not Firecracker's wire format, so it has its own
/// source-generated context beside the API's. Written compact: it is rewritten several times per start, and people
/// read it through <c>kiln inspect</c> (or <c>jq</c>), not raw.
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UseStringEnumConverter = true)]
[JsonSerializable(typeof(SandboxStateFile))]
internal sealed partial class SandboxStateJsonContext : JsonSerializerContext;
