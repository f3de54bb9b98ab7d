namespace Kiln.Agent;

/// <summary>How to run a command in the guest. Immutable; derive variants with <c>with</c>.</summary>
public sealed record ExecOptions
{
    /// <summary>Variables added to (or replacing in) the guest's base environment (PATH and HOME).</summary>
    public IReadOnlyDictionary<string, string>? Environment { get; init; }

    /// <summary>The working directory in the guest; the agent's own (/) when null.</summary>
    public string? WorkingDirectory { get; init; }

    /// <summary>The user: a name from the guest's /etc/passwd or a UID, optionally <c>:GID</c>; root when null.</summary>
    public string? User { get; init; }

    /// <summary>The agent kills the command (its whole process group) after this long; no limit when null.</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>For <c>ExecAsync</c>: bytes fed to the command's stdin, which is then closed; stdin is empty when null.</summary>
    public ReadOnlyMemory<byte>? StandardInput { get; init; }

    /// <summary>Checks the options before anything is sent, naming the bad property.</summary>
    /// <exception cref="ArgumentException">An invalid property.</exception>
    public void Validate()
    {
        if (Timeout is { } t && t <= TimeSpan.Zero)
            throw new ArgumentException($"{nameof(Timeout)} must be positive, not {t}.", nameof(Timeout));
        if (WorkingDirectory is { Length: 0 })
            throw new ArgumentException($"{nameof(WorkingDirectory)} must not be empty.", nameof(WorkingDirectory));
        if (User is { Length: 0 })
            throw new ArgumentException($"{nameof(User)} must not be empty.", nameof(User));
        foreach (var (key, _) in Environment ?? new Dictionary<string, string>())
        {
            if (key.Length == 0 || key.Contains('=', StringComparison.Ordinal))
                throw new ArgumentException($"{nameof(Environment)} holds an invalid name '{key}'.", nameof(Environment));
        }
    }
}
