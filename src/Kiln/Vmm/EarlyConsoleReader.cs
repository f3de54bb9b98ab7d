// The console keeper's FIFO, held open by the launcher until a keeper reads it. A jailed VMM's keeper starts only once
// the real VMM is known (the jailer execs firecracker, or forks it into a PID namespace), and a jailer that fails
// before that writes its error into the FIFO and exits: were nobody else holding the FIFO then, the kernel would drop
// those bytes with its last descriptor. This read end keeps them; a failed launch drains them into the console log,
// which is where the typed launch error reads its output tail from. It never reads while a keeper may: closed once the
// keeper is ready, and what the VMM wrote before that waits in the FIFO for the keeper.
using System.ComponentModel;
using Kiln.Interop;

namespace Kiln.Vmm;

internal sealed unsafe class EarlyConsoleReader : IDisposable
{
    private int _fd;

    private EarlyConsoleReader(string fifoPath, int fd)
    {
        FifoPath = fifoPath;
        _fd = fd;
    }

    /// <summary>The FIFO that becomes the VMM's stdout and stderr.</summary>
    public string FifoPath { get; }

    /// <summary>Makes the keeper's FIFO for <paramref name="outputPath"/> afresh and opens its read end (non-blocking).</summary>
    public static EarlyConsoleReader Create(string outputPath)
    {
        var fifo = ConsoleKeeper.FifoPath(outputPath);
        File.Delete(fifo); // a dead launch's FIFO; nothing when there is none
        FileNodes.CreateFifo(fifo);
        var fd = LibC.Open(fifo, LibC.O_RDONLY | LibC.O_NONBLOCK | LibC.O_CLOEXEC);
        if (fd < 0)
            throw new Win32Exception(LibC.LastErrno, $"open({fifo}) failed");
        return new EarlyConsoleReader(fifo, fd);
    }

    /// <summary>Appends what waits in the FIFO to <paramref name="outputPath"/> (nothing when it is empty).</summary>
    public void DrainInto(string outputPath)
    {
        if (_fd < 0)
            return;
        var buffer = new byte[16 * 1024];
        using var output = new FileStream(outputPath, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);
        while (true)
        {
            nint n;
            fixed (byte* p = buffer)
                n = LibC.Read(_fd, p, (nuint)buffer.Length);
            if (n > 0)
            {
                output.Write(buffer, 0, (int)n);
                continue;
            }
            // 0: no writer holds it any more and it is empty; EAGAIN: a writer holds it and it is empty.
            if (n < 0 && LibC.LastErrno == LibC.EINTR)
                continue;
            return;
        }
    }

    public void Dispose()
    {
        if (_fd >= 0)
            LibC.Close(_fd);
        _fd = -1;
    }
}
