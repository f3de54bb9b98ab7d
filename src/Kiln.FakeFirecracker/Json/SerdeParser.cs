// A strict JSON reader that fails the way serde_json (1.0.x) + #[derive(Deserialize)] + deny_unknown_fields fail:
// same wording, same "at line L column C" (C counts bytes consumed on the line; "peek" errors point one further).
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace Kiln.FakeFirecracker.Json;

/// <summary>A body serde_json would refuse. the message is `… at line L column C`.</summary>
internal sealed class SerdeException(string code, int line, int column) : Exception($"{code} at line {line} column {column}")
{
    public string Code { get; } = code;
    public int Line { get; } = line;
    public int Column { get; } = column;

    /// <summary>Rust's Debug form, as Firecracker logs it: <c>Error("…", line: 1, column: 84)</c>.</summary>
    public string DebugForm => $"Error({RustDebug.Str(Code)}, line: {Line}, column: {Column})";
}

internal sealed class SerdeParser
{
    private readonly byte[] _b;
    private int _i;

    private SerdeParser(byte[] body) => _b = body;

    /// <summary>Parses <paramref name="body"/> as <paramref name="spec"/>; defaults are not filled in (absent stays absent).</summary>
    public static JsonNode? Parse(byte[] body, SerdeSpec spec)
    {
        var p = new SerdeParser(body);
        var value = p.Value(spec);
        var next = p.Ws();
        if (next >= 0)
        {
            throw p.PeekError("trailing characters");
        }

        return value;
    }

    private int Peek => _i < _b.Length ? _b[_i] : -1;

    private int Ws()
    {
        while (_i < _b.Length && _b[_i] is (byte)' ' or (byte)'\n' or (byte)'\t' or (byte)'\r')
        {
            _i++;
        }

        return Peek;
    }

    private SerdeException ErrorAt(string code, int index)
    {
        var line = 1;
        var lineStart = 0;
        for (var k = 0; k < index && k < _b.Length; k++)
        {
            if (_b[k] == '\n')
            {
                line++;
                lineStart = k + 1;
            }
        }

        return new SerdeException(code, line, index - lineStart);
    }

    private SerdeException Error(string code) => ErrorAt(code, _i);

    private SerdeException PeekError(string code) => ErrorAt(code, Math.Min(_i + 1, _b.Length));

    private JsonNode? Value(SerdeSpec spec)
    {
        switch (spec)
        {
            case OptSpec opt:
                if (Ws() == 'n')
                {
                    _i++;
                    Ident("ull");
                    return null;
                }

                return Value(opt.Inner);
            case AnySpec:
                return AnyValue();
            case StructSpec st:
                {
                    var c = Ws();
                    if (c == '{')
                    {
                        _i++;
                        return StructBody(st);
                    }

                    throw InvalidType(st, c);
                }

            case SeqSpec seq:
                {
                    var c = Ws();
                    if (c != '[')
                    {
                        throw InvalidType(seq, c);
                    }

                    _i++;
                    var arr = new JsonArray();
                    var first = true;
                    while (true)
                    {
                        var d = Ws();
                        if (d == ']')
                        {
                            if (!first && _b[_i - 1] == ',')
                            {
                                throw PeekError("trailing comma");
                            }

                            _i++;
                            return arr;
                        }

                        if (!first)
                        {
                            if (d == ',')
                            {
                                _i++;
                                if (Ws() == ']')
                                {
                                    throw PeekError("trailing comma");
                                }
                            }
                            else if (d < 0)
                            {
                                throw PeekError("EOF while parsing a list");
                            }
                            else
                            {
                                throw PeekError("expected `,` or `]`");
                            }
                        }
                        else if (d < 0)
                        {
                            throw PeekError("EOF while parsing a list");
                        }

                        arr.Add(Value(seq.Item));
                        first = false;
                    }
                }

            case StrSpec:
                {
                    var c = Ws();
                    if (c == '"')
                    {
                        _i++;
                        return JsonValue.Create(Str());
                    }

                    throw InvalidType(spec, c);
                }

            case CheckedStrSpec checkedStr:
                {
                    var c = Ws();
                    if (c != '"')
                    {
                        throw InvalidType(spec, c);
                    }

                    _i++;
                    var s = Str();
                    return checkedStr.Check(s) is { } problem ? throw Error(problem) : JsonValue.Create(s);
                }

            case BoolSpec:
                {
                    var c = Ws();
                    if (c == 't')
                    {
                        _i++;
                        Ident("rue");
                        return JsonValue.Create(true);
                    }

                    if (c == 'f')
                    {
                        _i++;
                        Ident("alse");
                        return JsonValue.Create(false);
                    }

                    throw InvalidType(spec, c);
                }

            case UIntSpec u:
                {
                    var c = Ws();
                    if (c == '-' || c is >= '0' and <= '9')
                    {
                        var n = Number();
                        if (n.IsFloat)
                        {
                            throw Error($"invalid type: floating point `{FormatFloat(n.Float)}`, expected {u.RustName}");
                        }

                        if (n.Negative)
                        {
                            throw Error($"invalid value: integer `-{n.Magnitude}`, expected {u.RustName}");
                        }

                        if (n.Magnitude > u.Max)
                        {
                            throw Error($"invalid value: integer `{n.Magnitude}`, expected {u.RustName}");
                        }

                        return JsonValue.Create(n.Magnitude);
                    }

                    throw InvalidType(spec, c);
                }

            case EnumSpec e:
                {
                    var c = Ws();
                    if (c == '"')
                    {
                        _i++;
                        var s = Str();
                        if (Array.IndexOf(e.Variants, s) < 0)
                        {
                            throw Error($"unknown variant `{s}`, {OneOf(e.Variants, "variants")}");
                        }

                        return JsonValue.Create(s);
                    }

                    throw c < 0 ? PeekError("EOF while parsing a value") : PeekError("expected value");
                }

            default:
                throw new InvalidOperationException(spec.ToString());
        }
    }

    private JsonObject StructBody(StructSpec st)
    {
        var obj = new JsonObject();
        for (var first = true; NextKey(first) is { } key; first = false)
        {
            var field = Array.Find(st.Fields, f => f.Name == key)
                ?? throw Error($"unknown field `{key}`, {OneOf(st.Fields.Select(f => f.Name).ToArray(), "fields")}");
            if (obj.ContainsKey(key))
            {
                throw Error($"duplicate field `{key}`");
            }

            Colon();
            obj[key] = Value(field.Type);
        }

        foreach (var f in st.Fields)
        {
            if (f.Required && !obj.ContainsKey(f.Name))
            {
                throw Error($"missing field `{f.Name}`");
            }
        }

        return obj;
    }

    private static string OneOf(string[] names, string what)
    {
        if (names.Length == 0)
        {
            return $"there are no {what}";
        }

        if (names.Length == 1)
        {
            return $"expected `{names[0]}`";
        }

        if (names.Length == 2)
        {
            return $"expected `{names[0]}` or `{names[1]}`";
        }

        return "expected one of " + string.Join(", ", names.Select(n => $"`{n}`"));
    }

    // serde_json's peek_invalid_type: scalars are consumed first (so the column is past them), containers are not.
    private SerdeException InvalidType(SerdeSpec spec, int c)
    {
        string unexpected;
        switch (c)
        {
            case < 0:
                return PeekError("EOF while parsing a value");
            case 'n':
                _i++;
                Ident("ull");
                unexpected = "null";
                break;
            case 't':
                _i++;
                Ident("rue");
                unexpected = "boolean `true`";
                break;
            case 'f':
                _i++;
                Ident("alse");
                unexpected = "boolean `false`";
                break;
            case '-' or (>= '0' and <= '9'):
                {
                    var n = Number();
                    unexpected = n.IsFloat ? $"floating point `{FormatFloat(n.Float)}`"
                        : n.Negative ? $"integer `-{n.Magnitude}`" : $"integer `{n.Magnitude}`";
                    break;
                }

            case '"':
                _i++;
                unexpected = "string " + RustDebug.Str(Str());
                break;
            case '[':
                unexpected = "sequence";
                break;
            case '{':
                unexpected = "map";
                break;
            default:
                return PeekError("expected value");
        }

        return Error($"invalid type: {unexpected}, expected {spec.Expecting}");
    }

    private static string FormatFloat(double d)
    {
        var s = d.ToString("R", CultureInfo.InvariantCulture);
        return s.Contains('.', StringComparison.Ordinal) || s.Contains('E', StringComparison.Ordinal) || s.Contains("inf", StringComparison.OrdinalIgnoreCase) ? s : s + ".0";
    }

    private void Ident(string rest)
    {
        foreach (var ch in rest)
        {
            if (_i >= _b.Length)
            {
                throw Error("EOF while parsing a value");
            }

            if (_b[_i] != ch)
            {
                _i++;
                throw Error("expected ident");
            }

            _i++;
        }
    }

    private readonly record struct Num(bool Negative, ulong Magnitude, bool IsFloat, double Float);

    private Num Number()
    {
        var start = _i;
        var negative = false;
        if (Peek == '-')
        {
            negative = true;
            _i++;
        }

        if (Peek is < '0' or > '9')
        {
            throw Peek < 0 ? Error("EOF while parsing a value") : PeekError("invalid number");
        }

        var intStart = _i;
        if (Peek == '0')
        {
            _i++;
            if (Peek is >= '0' and <= '9')
            {
                throw PeekError("invalid number");
            }
        }
        else
        {
            while (Peek is >= '0' and <= '9')
            {
                _i++;
            }
        }

        var intEnd = _i;
        var isFloat = false;
        if (Peek == '.')
        {
            isFloat = true;
            _i++;
            if (Peek is < '0' or > '9')
            {
                throw Peek < 0 ? Error("EOF while parsing a value") : PeekError("invalid number");
            }

            while (Peek is >= '0' and <= '9')
            {
                _i++;
            }
        }

        if (Peek is 'e' or 'E')
        {
            isFloat = true;
            _i++;
            if (Peek is '+' or '-')
            {
                _i++;
            }

            if (Peek is < '0' or > '9')
            {
                throw Peek < 0 ? Error("EOF while parsing a value") : PeekError("invalid number");
            }

            while (Peek is >= '0' and <= '9')
            {
                _i++;
            }
        }

        var digits = Encoding.ASCII.GetString(_b, intStart, intEnd - intStart);
        if (!isFloat && ulong.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var mag))
        {
            return new Num(negative, mag, false, 0);
        }

        var f = double.Parse(Encoding.ASCII.GetString(_b, start, _i - start), NumberStyles.Float, CultureInfo.InvariantCulture);
        return new Num(negative, 0, true, f);
    }

    // Called after the opening quote.
    private string Str()
    {
        var sb = new StringBuilder();
        var runStart = _i;
        while (true)
        {
            if (_i >= _b.Length)
            {
                throw Error("EOF while parsing a string");
            }

            var c = _b[_i];
            if (c == '"')
            {
                sb.Append(Utf8(runStart, _i));
                _i++;
                return sb.ToString();
            }

            if (c == '\\')
            {
                sb.Append(Utf8(runStart, _i));
                _i++;
                if (_i >= _b.Length)
                {
                    throw Error("EOF while parsing a string");
                }

                var e = _b[_i++];
                switch (e)
                {
                    case (byte)'"': sb.Append('"'); break;
                    case (byte)'\\': sb.Append('\\'); break;
                    case (byte)'/': sb.Append('/'); break;
                    case (byte)'b': sb.Append('\b'); break;
                    case (byte)'f': sb.Append('\f'); break;
                    case (byte)'n': sb.Append('\n'); break;
                    case (byte)'r': sb.Append('\r'); break;
                    case (byte)'t': sb.Append('\t'); break;
                    case (byte)'u':
                        sb.Append((char)Hex4());
                        break;
                    default:
                        throw Error("invalid escape");
                }

                runStart = _i;
                continue;
            }

            if (c < 0x20)
            {
                _i++;
                throw Error("control character (\\u0000-\\u001F) found while parsing a string");
            }

            _i++;
        }
    }

    private int Hex4()
    {
        var v = 0;
        for (var k = 0; k < 4; k++)
        {
            if (_i >= _b.Length)
            {
                throw Error("EOF while parsing a string");
            }

            var h = _b[_i++];
            var d = h switch
            {
                >= (byte)'0' and <= (byte)'9' => h - '0',
                >= (byte)'a' and <= (byte)'f' => h - 'a' + 10,
                >= (byte)'A' and <= (byte)'F' => h - 'A' + 10,
                _ => -1,
            };
            if (d < 0)
            {
                throw Error("invalid escape");
            }

            v = (v * 16) + d;
        }

        return v;
    }

    private string Utf8(int from, int to)
    {
        try
        {
            return new UTF8Encoding(false, true).GetString(_b, from, to - from);
        }
        catch (DecoderFallbackException)
        {
            throw Error("invalid unicode code point");
        }
    }

    // Inside an object whose `{` is consumed: reads the next key (up to its closing quote) with serde_json's errors
    // for what may stand between members; null once the closing `}` is consumed.
    private string? NextKey(bool first)
    {
        var c = Ws();
        if (c == '}')
        {
            _i++;
            return null;
        }

        if (!first)
        {
            if (c != ',')
            {
                throw c < 0 ? PeekError("EOF while parsing an object") : PeekError("expected `,` or `}`");
            }

            _i++;
            c = Ws();
            if (c == '}')
            {
                throw PeekError("trailing comma");
            }
        }

        if (c < 0)
        {
            throw PeekError("EOF while parsing an object");
        }

        if (c != '"')
        {
            throw PeekError("key must be a string");
        }

        _i++;
        return Str();
    }

    private void Colon()
    {
        var c = Ws();
        if (c != ':')
        {
            throw c < 0 ? PeekError("EOF while parsing an object") : PeekError("expected `:`");
        }

        _i++;
    }

    private JsonNode? AnyValue()
    {
        var c = Ws();
        switch (c)
        {
            case < 0:
                throw PeekError("EOF while parsing a value");
            case 'n':
                _i++;
                Ident("ull");
                return null;
            case 't':
                _i++;
                Ident("rue");
                return JsonValue.Create(true);
            case 'f':
                _i++;
                Ident("alse");
                return JsonValue.Create(false);
            case '"':
                _i++;
                return JsonValue.Create(Str());
            case '-' or (>= '0' and <= '9'):
                {
                    var n = Number();
                    if (n.IsFloat)
                    {
                        return JsonValue.Create(n.Float);
                    }

                    return n.Negative ? JsonValue.Create(-(long)n.Magnitude) : JsonValue.Create(n.Magnitude);
                }

            case '[':
                {
                    _i++;
                    var arr = new JsonArray();
                    var first = true;
                    while (true)
                    {
                        var d = Ws();
                        if (d == ']')
                        {
                            _i++;
                            return arr;
                        }

                        if (!first)
                        {
                            if (d != ',')
                            {
                                throw d < 0 ? PeekError("EOF while parsing a list") : PeekError("expected `,` or `]`");
                            }

                            _i++;
                            if (Ws() == ']')
                            {
                                throw PeekError("trailing comma");
                            }
                        }
                        else if (d < 0)
                        {
                            throw PeekError("EOF while parsing a list");
                        }

                        arr.Add(AnyValue());
                        first = false;
                    }
                }

            case '{':
                {
                    _i++;
                    var obj = new JsonObject();
                    for (var first = true; NextKey(first) is { } key; first = false)
                    {
                        Colon();
                        // serde_json's Value keeps the last of duplicate keys.
                        obj[key] = AnyValue();
                    }

                    return obj;
                }

            default:
                throw PeekError("expected value");
        }
    }
}
