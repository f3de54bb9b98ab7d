// The guest's serial console as a stream: its output is the (rotating) file the VMM's output is written to, read
// live by FileFollower; its input is Firecracker's stdin — the pipe of an owned VMM, or the FIFO a detached VMM was
// started with.
using System.Runtime.CompilerServices;
using System.Text;

namespace Kiln.Vmm;

/// <summary>A microVM's serial console: its output as lines or raw chunks, and its input.</summary>
public sealed class SerialConsole : IDisposable
{
    private readonly Stream? _input;
    private readonly string? _inputPath;
    private readonly SemaphoreSlim _writeGate = new(1, 1);

    /// <summary>A console whose output is <paramref name="outputPath"/>; input through a stream or a FIFO, if any.</summary>
    public SerialConsole(string outputPath, Stream? input = null, string? inputPath = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(outputPath);
        OutputPath = outputPath;
        _input = input;
        _inputPath = inputPath;
    }

    /// <summary>The console of a VMM: its output file, and its stdin when it is owned.</summary>
    public static SerialConsole Of(VmmProcess vmm, string? inputPath = null)
    {
        ArgumentNullException.ThrowIfNull(vmm);
        return new SerialConsole(vmm.OutputPath, vmm.SerialInput, inputPath);
    }

    /// <summary>The file the console's output is written to (rotated files beside it: PATH.1, …).</summary>
    public string OutputPath { get; }

    /// <summary>Whether <see cref="WriteAsync"/> has somewhere to write.</summary>
    public bool CanWrite => _input is not null || _inputPath is not null;

    /// <summary>
    /// The console's lines in order (UTF-8, without the serial line ending's CR LF), from the start of the current
    /// file or, with <see cref="FollowOptions.StartAtEnd"/>, from now; following it across rotations until
    /// <see cref="FollowOptions.Until"/> completes (e.g. <see cref="VmmProcess.Exited"/>) or cancellation.
    /// </summary>
    public async IAsyncEnumerable<string> ReadLinesAsync(FollowOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await foreach (var line in FileFollower.ReadLinesAsync(OutputPath, options, cancellationToken).ConfigureAwait(false))
        {
            var span = line.Span;
            if (!span.IsEmpty && span[^1] == (byte)'\r')
                span = span[..^1];
            yield return Encoding.UTF8.GetString(span);
        }
    }

    /// <summary>The console's output as it arrives, chunk by chunk (for a terminal: partial lines such as prompts show at once).</summary>
    public IAsyncEnumerable<ReadOnlyMemory<byte>> ReadAsync(FollowOptions? options = null, CancellationToken cancellationToken = default) =>
        FileFollower.ReadChunksAsync(OutputPath, options, cancellationToken);

    /// <summary>Sends bytes to the guest's serial input (a terminal's Enter is <c>\r</c>).</summary>
    /// <exception cref="InvalidOperationException">The console has no input (a re-attached VMM started without an input FIFO).</exception>
    public async ValueTask WriteAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken = default)
    {
        if (!CanWrite)
            throw new InvalidOperationException("This console has no serial input: the VMM was not started with one Kiln can reach.");
        await _writeGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_input is not null)
            {
                await _input.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
                await _input.FlushAsync(cancellationToken).ConfigureAwait(false);
                return;
            }
            // The VMM holds the FIFO open read-write, so opening it to write does not wait.
            await using var fifo = new FileStream(_inputPath!, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, 1, FileOptions.None);
            await fifo.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _writeGate.Release();
        }
    }

    /// <inheritdoc/>
    public void Dispose() => _writeGate.Dispose();

    /// <summary>Sends a line of text and Enter.</summary>
    public ValueTask WriteLineAsync(string line, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(line);
        return WriteAsync(Encoding.UTF8.GetBytes(line + "\r"), cancellationToken);
    }
}
