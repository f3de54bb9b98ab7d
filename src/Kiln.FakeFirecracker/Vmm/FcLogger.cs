// Firecracker's log line format: `TIMESTAMP [ID:THREAD(:LEVEL)(:FILE:LINE)] message`, to stdout until PUT /logger
// (or --log-path) points it at a file or FIFO. Stdout is shared with the guest's serial console, hence the one lock.
using System.Globalization;
using System.Text;
using Kiln.FakeFirecracker.Interop;

namespace Kiln.FakeFirecracker.Vmm;

internal enum LogLevel
{
    Off = 0,
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

/// <summary>Where a log line comes from in Firecracker's source: shown with show_log_origin, filtered by module.</summary>
internal readonly record struct LogOrigin(string File, int Line)
{
    public static readonly LogOrigin Main = new("src/firecracker/src/main.rs", 0);
    public static readonly LogOrigin Received = new("src/firecracker/src/api_server/parsed_request.rs", 76);
    public static readonly LogOrigin Ok200 = new("src/firecracker/src/api_server/parsed_request.rs", 166);
    public static readonly LogOrigin Ok204 = new("src/firecracker/src/api_server/parsed_request.rs", 192);
    public static readonly LogOrigin Fault = new("src/firecracker/src/api_server/parsed_request.rs", 225);
    public static readonly LogOrigin ApiServer = new("src/firecracker/src/api_server/mod.rs", 183);
    public static readonly LogOrigin Rpc = new("src/vmm/src/rpc_interface.rs", 877);
    public static readonly LogOrigin Devices = new("src/vmm/src/device_manager/mod.rs", 375);
    public static readonly LogOrigin Vcpu = new("src/vmm/src/vstate/vcpu.rs", 302);
    public static readonly LogOrigin Vmm = new("src/vmm/src/lib.rs", 822);
    public static readonly LogOrigin Persist = new("src/vmm/src/persist.rs", 0);
    public static readonly LogOrigin DevPreview = new("src/vmm/src/logger/mod.rs", 56);
    public static readonly LogOrigin ApiDuration = new("src/firecracker/src/api_server/mod.rs", 116);

    /// <summary>The Rust module path, e.g. <c>firecracker::api_server::parsed_request</c>.</summary>
    public string Module
    {
        get
        {
            var parts = File.Split('/');
            // src/<crate>/src/<path...>.rs
            var crate = parts.Length > 1 ? parts[1] : "firecracker";
            var rest = parts.Skip(3).Select(p => p.EndsWith(".rs", StringComparison.Ordinal) ? p[..^3] : p).Where(p => p is not ("mod" or "lib" or "main"));
            return string.Join("::", new[] { crate }.Concat(rest));
        }
    }
}

internal sealed class FcLogger
{
    private readonly Lock _gate = new();
    private int _fd = -1;
    private LogLevel _level = LogLevel.Info;
    private bool _showLevel;
    private bool _showOrigin;
    private string? _module;

    public FcLogger(string instanceId) => InstanceId = instanceId;

    public string InstanceId { get; set; }

    public bool Configured { get; private set; }

    public static bool TryParseLevel(string text, out LogLevel level)
    {
        level = text.ToLowerInvariant() switch
        {
            "off" => LogLevel.Off,
            "error" => LogLevel.Error,
            "warn" or "warning" => LogLevel.Warn,
            "info" => LogLevel.Info,
            "debug" => LogLevel.Debug,
            "trace" => LogLevel.Trace,
            _ => (LogLevel)(-1),
        };
        return (int)level >= 0;
    }

    /// <summary>Points the log at <paramref name="path"/> (opened read-write, non-blocking, so a FIFO never blocks us).</summary>
    /// <returns>0, or the errno when the file cannot be opened.</returns>
    /// <remarks>As Firecracker's <c>Logger::update</c>: a level left out is Info again, not the previous one.</remarks>
    public int Configure(string? path, LogLevel? level, bool? showLevel, bool? showOrigin, string? module)
    {
        lock (_gate)
        {
            if (path is not null)
            {
                var fd = NativeMethods.Open(path, NativeMethods.O_RDWR | NativeMethods.O_CREAT | NativeMethods.O_APPEND | NativeMethods.O_NONBLOCK);
                if (fd < 0)
                {
                    return -fd;
                }

                if (_fd >= 0)
                {
                    NativeMethods.Close(_fd);
                }

                _fd = fd;
                Configured = true;
            }

            _level = level ?? LogLevel.Info;
            _showLevel = showLevel ?? _showLevel;
            _showOrigin = showOrigin ?? _showOrigin;
            _module = module ?? _module;
            return 0;
        }
    }

    public bool Enabled(LogLevel level) => level <= _level;

    public void Info(string thread, string message, LogOrigin origin) => Write(LogLevel.Info, thread, message, origin);

    public void Warn(string thread, string message, LogOrigin origin) => Write(LogLevel.Warn, thread, message, origin);

    public void Error(string thread, string message, LogOrigin origin) => Write(LogLevel.Error, thread, message, origin);

    public void Write(LogLevel level, string thread, string message, LogOrigin origin)
    {
        if (level > _level || (_module is not null && !origin.Module.StartsWith(_module, StringComparison.Ordinal)))
        {
            return;
        }

        var sb = new StringBuilder(128);
        sb.Append(Timestamp()).Append(" [").Append(InstanceId).Append(':').Append(thread);
        if (_showLevel)
        {
            sb.Append(':').Append(level switch
            {
                LogLevel.Error => "ERROR",
                LogLevel.Warn => "WARN",
                LogLevel.Info => "INFO",
                LogLevel.Debug => "DEBUG",
                _ => "TRACE",
            });
        }

        if (_showOrigin)
        {
            sb.Append(':').Append(origin.File).Append(':').Append(origin.Line.ToString(CultureInfo.InvariantCulture));
        }

        sb.Append("] ").Append(message).Append('\n');
        var bytes = Encoding.UTF8.GetBytes(sb.ToString());
        lock (_gate)
        {
            if (_fd >= 0)
            {
                // A full FIFO drops the line, as Firecracker counts a missed log instead of blocking.
                _ = NativeMethods.WriteAll(_fd, bytes);
            }
            else
            {
                _ = NativeMethods.WriteAll(1, bytes);
            }
        }
    }

    // As Firecracker's serial device does (src/vmm/src/devices/legacy/serial.rs, SerialWrapper::bus_write at v1.16.1:
    // a failed write to stdout is logged and counted in uart.error_count, and the byte is lost): a non-blocking stdout
    // that is full drops the bytes instead of blocking the VMM (a console keeper's FIFO whose reader died); .NET's
    // console stream would wait for room. Not modelled: that error line and the error_count metric.
    /// <summary>Writes raw text to stdout (the serial console, or lines Rust prints with println!).</summary>
    public void Stdout(string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        lock (_gate)
        {
            _ = NativeMethods.WriteAll(1, bytes);
        }
    }

    public static string Timestamp()
    {
        var now = DateTime.Now;
        // Nanosecond precision as Firecracker prints it; .NET ticks give 100 ns, the last two digits are padding.
        return now.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff", CultureInfo.InvariantCulture) + "00";
    }
}
