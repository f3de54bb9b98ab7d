// What a console keeper needs to hold a FIFO: open it without waiting for a writer, then read it blocking.
namespace Kiln.Interop;

internal static partial class LibC
{
    public const int O_NONBLOCK = 0x800;
    public const int F_GETFL = 3;
    public const int F_SETFL = 4;
}
