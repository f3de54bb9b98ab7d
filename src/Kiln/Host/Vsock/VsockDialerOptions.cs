namespace Kiln.Host.Vsock;

/// <summary>
/// How <see cref="VsockDialer"/> waits for a guest: each attempt waits <see cref="AttemptTimeout"/> for Firecracker's
/// <c>OK</c>; a refused or unanswered attempt is retried every <see cref="RetryInterval"/> (the guest may still be
/// booting, its service not yet listening) until <see cref="ConnectTimeout"/> has passed since the first.
/// </summary>
public sealed record VsockDialerOptions
{
    /// <summary>The whole connect, all attempts included. Default 30 s.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>One attempt: connect, <c>CONNECT</c>, <c>OK</c>. Default 5 s.</summary>
    public TimeSpan AttemptTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The pause between attempts. Nothing signals that a guest started listening, so this is a poll. Default 50 ms.</summary>
    public TimeSpan RetryInterval { get; init; } = TimeSpan.FromMilliseconds(50);

    /// <summary>Whether a refused or unanswered attempt is tried again; false fails on the first. Default true.</summary>
    public bool RetryWhileBooting { get; init; } = true;

    /// <summary>The clock for timeouts and pauses.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Throws naming the first bad property.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A timeout or interval that is not positive.</exception>
    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(ConnectTimeout, TimeSpan.Zero, nameof(ConnectTimeout));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(AttemptTimeout, TimeSpan.Zero, nameof(AttemptTimeout));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(RetryInterval, TimeSpan.Zero, nameof(RetryInterval));
        ArgumentNullException.ThrowIfNull(TimeProvider, nameof(TimeProvider));
    }
}
