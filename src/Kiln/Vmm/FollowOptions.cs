namespace Kiln.Vmm;

/// <summary>How <see cref="FileFollower"/> reads a file or FIFO that a process keeps writing.</summary>
public sealed record FollowOptions
{
    /// <summary>Keep reading as the writer appends (true), or read what is there now and end (false).</summary>
    public bool Follow { get; init; } = true;

    /// <summary>
    /// When this completes (typically the VMM's exit), what has been written so far is read and the follow ends.
    /// Null: follow until cancelled.
    /// </summary>
    public Task? Until { get; init; }

    /// <summary>The clock of the fallback tick.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>
    /// How often a followed regular file is read even without a change notification (inotify can drop events, some
    /// file systems send none, and inotify instances may run out).
    /// </summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Lines longer than this are cut to it (the rest of the line is dropped).</summary>
    public int MaxLineBytes { get; init; } = 1024 * 1024;

    /// <summary>Start at the current end of a regular file (only what is written from now on), not at its start.</summary>
    public bool StartAtEnd { get; init; }

    internal void Validate()
    {
        ArgumentNullException.ThrowIfNull(TimeProvider);
        if (PollInterval <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(PollInterval), PollInterval, $"{nameof(PollInterval)} must be positive.");
        if (MaxLineBytes < 1)
            throw new ArgumentOutOfRangeException(nameof(MaxLineBytes), MaxLineBytes, $"{nameof(MaxLineBytes)} must be positive.");
    }
}
