using Microsoft.Extensions.Logging;

namespace Kiln.Api;

/// <summary>Settings of a <see cref="FirecrackerClient"/>.</summary>
public sealed record FirecrackerClientOptions
{
    /// <summary>The defaults: 10 s per request, 5 min per snapshot, no logging, the system clock.</summary>
    public static FirecrackerClientOptions Default { get; } = new();

    /// <summary>
    /// Deadline of one request, from the moment it is its turn on the connection until its answer is read
    /// (Firecracker answers in well under a millisecond; <c>InstanceStart</c> takes tens of milliseconds).
    /// <see cref="Timeout.InfiniteTimeSpan"/> turns it off.
    /// </summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Deadline of <c>createSnapshot</c> and <c>loadSnapshot</c>, which write or map all guest memory
    /// (about 175 ms per 128 MiB was seen for a full snapshot).
    /// </summary>
    public TimeSpan SnapshotTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Where requests are logged (at Debug); null for none.</summary>
    public ILogger? Logger { get; init; }

    /// <summary>The clock deadlines run on; tests pass a fake one.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}
