// Hand-over: a running or paused microVM given to a new owner whose files live elsewhere (a VM restored ahead of
// demand by a cache, handed to a sandbox). Its files are renamed to the new owner's paths, never copied: a Unix socket
// keeps listening on its inode, and Firecracker's descriptors (its log, the memory and drive files) follow the inodes.
// What cannot follow is what Firecracker holds as a path string or has fixed at spawn or load: its --id (log lines and
// metrics keep the old one), its metrics path, its TAPs, its jail, and the vsock socket path it dials for connections
// the guest opens (it connects to "<uds_path as loaded>_PORT", which stays the old path). Host-to-guest vsock, the API
// and the console move.
using Kiln.Host;
using Kiln.Interop;

namespace Kiln.Vm;

/// <summary>A file of a microVM's own to be renamed along with it.</summary>
/// <param name="From">Where it is.</param>
/// <param name="To">Where the new owner expects it.</param>
public sealed record FileMove(string From, string To);

public sealed partial class Microvm
{
    /// <summary>
    /// Hands this microVM over to the paths of <paramref name="options"/>: renames its API socket, Firecracker log,
    /// vsock socket (to <paramref name="vsockPath"/>) and <paramref name="files"/>, moves its console output, and
    /// returns a new handle that owns the same VMM with those options (the new owner's timeouts, logging, id in log
    /// events). This handle is spent: disposing it does nothing. On failure what was renamed is renamed back and this
    /// handle still owns the VMM.
    /// </summary>
    /// <exception cref="ArgumentException">
    /// What cannot move: another firecracker binary, ownership, metrics path or start path; a jailed VM; paths on
    /// another file system.
    /// </exception>
    /// <exception cref="MicrovmStateException">Neither Running nor Paused.</exception>
    /// <exception cref="IOException">A rename failed (what was moved went back).</exception>
    public async Task<Microvm> MoveAsync(MicrovmOptions options, string? vsockPath, IReadOnlyList<FileMove> files, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(files);
        options.Validate();
        if (vsockPath is not null)
            Api.UnixSocketPath.Validate(vsockPath, nameof(vsockPath));
        if (_jail is not null)
            throw new ArgumentException("A jailed microVM's files are inside its chroot; it cannot be handed over.", nameof(options));
        if (Path.GetFullPath(options.FirecrackerPath) != Path.GetFullPath(_options.FirecrackerPath))
            throw new ArgumentException("The VMM runs the binary it was spawned from.", nameof(options));
        if (options.Ownership != _options.Ownership)
            throw new ArgumentException($"The VMM is {_options.Ownership}; ownership is fixed at the spawn.", nameof(options));
        if (options.MetricsPath != _options.MetricsPath)
            throw new ArgumentException("Firecracker's metrics path is fixed at the spawn.", nameof(options));
        if ((options.LogPath is null) != (_options.LogPath is null))
            throw new ArgumentException("Whether Firecracker logs to a file is fixed at the spawn.", nameof(options));
        if ((vsockPath is null) != ((_restoredVsockPath ?? Description?.Vsock?.UdsPath) is null))
            throw new ArgumentException("The vsock socket moves along (a VM with one needs a new path, one without cannot get one).", nameof(vsockPath));
        var directory = Path.GetDirectoryName(Path.GetFullPath(options.SocketPath))!;
        if (!ChrootFiles.SameFileSystem(Path.GetDirectoryName(Path.GetFullPath(_options.SocketPath))!, directory))
            throw new ArgumentException($"{directory} is on another file system than the VM's files; they move by rename only.", nameof(options));

        Microvm? moved = null;
        await LockedAsync("hand over", "hand-over", [MicrovmState.Running, MicrovmState.Paused], _ =>
        {
            var renames = new List<FileMove> { new(_options.SocketPath, options.SocketPath) };
            if (vsockPath is not null)
                renames.Add(new(_restoredVsockPath ?? Description!.Vsock!.UdsPath, vsockPath));
            renames.AddRange(files);
            var done = new List<FileMove>();
            string? keptLog = null;
            try
            {
                foreach (var move in renames)
                {
                    LibC.RenameOrThrow(move.From, move.To);
                    done.Add(move);
                }
                if (_options.LogPath is { } log && options.LogPath is { } newLog && log != newLog)
                {
                    // As a fresh start does: the new owner's previous log is kept as .1.
                    if (File.Exists(newLog))
                    {
                        keptLog = newLog + ".1";
                        LibC.RenameOrThrow(newLog, keptLog);
                    }
                    LibC.RenameOrThrow(log, newLog);
                    done.Add(new(log, newLog));
                }
                _vmm.MoveOutput(options.ConsolePath);
            }
            catch
            {
                for (var i = done.Count - 1; i >= 0; i--)
                    LibC.Rename(done[i].To, done[i].From);
                if (keptLog is not null)
                    LibC.Rename(keptLog, keptLog[..^2]);
                throw;
            }
            moved = new Microvm(options, options.CreateLogger(), _vmm, _state, Description) { _restoredVsockPath = vsockPath };
            _disposed = 1; // spent: the VMM is the new handle's now
            return Task.CompletedTask;
        }, cancellationToken).ConfigureAwait(false);

        await StopConsoleBoundAsync().ConfigureAwait(false);
        await StopReadersAsync().ConfigureAwait(false);
        if (_client is not null)
            await _client.DisposeAsync().ConfigureAwait(false);
        _client = null;
        moved!.StartReaders();
        moved.StartConsoleBound();
        return moved;
    }
}
