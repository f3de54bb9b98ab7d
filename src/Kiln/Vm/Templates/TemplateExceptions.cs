namespace Kiln.Vm.Templates;

/// <summary>Why a template cannot be used.</summary>
public enum TemplateMismatchKind
{
    /// <summary>The firecracker binary that would load it is another release than the one that wrote it.</summary>
    FirecrackerVersion,

    /// <summary>A file it needs changed (size or checksum) or is gone since it was made.</summary>
    FileChanged,

    /// <summary>A path the snapshot recorded is gone, so a clone's copy cannot be bound over it.</summary>
    RecordedPathMissing,

    /// <summary>It was made from a jailed VM, whose snapshot records paths inside its chroot: only a jailed clone can load it.</summary>
    NeedsJail,
}

/// <summary>A template that must not be loaded as it is; nothing was started.</summary>
public sealed class TemplateMismatchException(string template, TemplateMismatchKind kind, string message)
    : MicrovmException($"Template '{template}': {message}")
{
    /// <summary>The template's name.</summary>
    public string Template { get; } = template;

    /// <summary>What is wrong.</summary>
    public TemplateMismatchKind Kind { get; } = kind;
}

/// <summary>No template of that name, one that already exists, a bad name, or an unreadable one.</summary>
public sealed class TemplateStoreException(string template, string message, Exception? innerException = null) : MicrovmException(message, innerException)
{
    /// <summary>The template's name.</summary>
    public string Template { get; } = template;
}
