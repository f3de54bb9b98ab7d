// Metrics are written as one JSON line per flush (InstanceStart, FlushMetrics), counters counting since the last line.
using System.Text.Json;
using Kiln.FakeFirecracker.Interop;

namespace Kiln.FakeFirecracker.Vmm;

internal sealed class Metrics
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, ulong> _counters = new(StringComparer.Ordinal);
    private int _fd = -1;

    public bool Configured => _fd >= 0;

    /// <returns>null, or the errno text when the file cannot be opened.</returns>
    public string? Configure(string path)
    {
        // Read-write + non-blocking: a FIFO opens at once even with no reader, like Firecracker's open_file_nonblock.
        var fd = NativeMethods.Open(path, NativeMethods.O_RDWR | NativeMethods.O_CREAT | NativeMethods.O_APPEND | NativeMethods.O_NONBLOCK);
        if (fd < 0)
        {
            return NativeMethods.OsError(-fd);
        }

        lock (_gate)
        {
            if (_fd >= 0)
            {
                NativeMethods.Close(_fd);
            }

            _fd = fd;
        }

        return null;
    }

    public void Count(string key)
    {
        lock (_gate)
        {
            _counters[key] = _counters.GetValueOrDefault(key) + 1;
        }
    }

    /// <summary>Writes one line; returns false when no metrics file is configured.</summary>
    public bool Flush()
    {
        lock (_gate)
        {
            if (_fd < 0)
            {
                return false;
            }

            var buffer = new MemoryStream();
            using (var w = new Utf8JsonWriter(buffer))
            using (var doc = JsonDocument.Parse(MetricsTemplate.Json))
            {
                w.WriteStartObject();
                foreach (var p in doc.RootElement.EnumerateObject())
                {
                    if (p.Name == "utc_timestamp_ms")
                    {
                        w.WriteNumber(p.Name, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
                    }
                    else
                    {
                        w.WritePropertyName(p.Name);
                        WriteGroup(w, p.Name, p.Value);
                    }
                }

                w.WriteEndObject();
            }

            buffer.WriteByte((byte)'\n');
            _counters.Clear();
            _ = NativeMethods.WriteAll(_fd, buffer.ToArray());
            return true;
        }
    }

    private void WriteGroup(Utf8JsonWriter w, string path, JsonElement e)
    {
        if (e.ValueKind != JsonValueKind.Object)
        {
            w.WriteNumberValue(_counters.GetValueOrDefault(path));
            return;
        }

        w.WriteStartObject();
        foreach (var p in e.EnumerateObject())
        {
            w.WritePropertyName(p.Name);
            WriteGroup(w, path + "." + p.Name, p.Value);
        }

        w.WriteEndObject();
    }
}
