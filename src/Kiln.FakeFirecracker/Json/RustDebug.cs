using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace Kiln.FakeFirecracker.Json;

/// <summary>Rust's <c>{:?}</c> rendering of a string, which Firecracker uses when it logs paths and bodies.</summary>
internal static class RustDebug
{
    public static string Str(string s)
    {
        var sb = new StringBuilder(s.Length + 2);
        sb.Append('"');
        foreach (var rune in s.EnumerateRunes())
        {
            switch (rune.Value)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case 0: sb.Append("\\0"); break;
                default:
                    if (Rune.IsControl(rune))
                    {
                        sb.Append("\\u{").Append(rune.Value.ToString("x", CultureInfo.InvariantCulture)).Append('}');
                    }
                    else
                    {
                        sb.Append(rune.ToString());
                    }

                    break;
            }
        }

        return sb.Append('"').ToString();
    }

    /// <summary>Rust's <c>{:?}</c> of an <c>std::io::Error</c> from the OS: <c>Os { code: 2, kind: NotFound, message: "…" }</c>.</summary>
    public static string IoError(int errno)
    {
        var kind = errno switch
        {
            2 => "NotFound",
            13 => "PermissionDenied",
            20 => "NotADirectory",
            21 => "IsADirectory",
            _ => "Uncategorized",
        };
        return $"Os {{ code: {errno}, kind: {kind}, message: {Str(Marshal.GetPInvokeErrorMessage(errno))} }}";
    }
}
