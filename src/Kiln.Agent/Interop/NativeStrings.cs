// NUL-terminated UTF-8 strings and NULL-terminated string arrays in native memory, as posix_spawn and execv take them.
using System.Runtime.InteropServices;
using System.Text;

namespace Kiln.GuestAgent.Interop;

internal sealed unsafe class NativeStrings : IDisposable
{
    private readonly List<nint> _blocks = [];

    public byte* String(string value)
    {
        var count = Encoding.UTF8.GetByteCount(value);
        var p = (byte*)NativeMemory.Alloc((nuint)count + 1);
        _blocks.Add((nint)p);
        fixed (char* c = value)
            Encoding.UTF8.GetBytes(c, value.Length, p, count);
        p[count] = 0;
        return p;
    }

    public byte** Array(IReadOnlyList<string> values)
    {
        var p = (byte**)NativeMemory.Alloc((nuint)(values.Count + 1), (nuint)sizeof(nint));
        _blocks.Add((nint)p);
        for (var i = 0; i < values.Count; i++)
            p[i] = String(values[i]);
        p[values.Count] = null;
        return p;
    }

    public void Dispose()
    {
        foreach (var block in _blocks)
            NativeMemory.Free((void*)block);
        _blocks.Clear();
    }
}
