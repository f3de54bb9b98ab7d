namespace Kiln.Images;

/// <summary>An <see cref="ImageSpec"/> property is invalid; nothing was created.</summary>
public sealed class ImageSpecException(string propertyName, string message)
    : ArgumentException($"{propertyName}: {message}.", propertyName)
{
    /// <summary>The property at fault.</summary>
    public string PropertyName { get; } = propertyName;
}

/// <summary>A build step failed; its partial files were removed.</summary>
public sealed class ImageBuildException(string step, string message, string toolOutput = "", Exception? innerException = null)
    : Exception($"image build failed at step {step}: {message}", innerException)
{
    /// <summary>The step that failed (<see cref="ImageBuildProgress.Step"/>).</summary>
    public string Step { get; } = step;

    /// <summary>The tail of what the failing tool printed, if a tool failed.</summary>
    public string ToolOutput { get; } = toolOutput;
}
