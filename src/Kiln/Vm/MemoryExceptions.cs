namespace Kiln.Vm;

/// <summary>
/// The guest's virtio-balloon driver never activated the balloon device within the wait: Firecracker refuses every
/// size change until it has (<c>Balloon: Device not activated yet.</c>). A guest kernel without
/// <c>CONFIG_VIRTIO_BALLOON</c>, or one that has not booted far enough, never does.
/// </summary>
public sealed class BalloonNotActivatedException(TimeSpan waited, string? faultMessage)
    : MicrovmException($"The guest's virtio-balloon driver did not activate the balloon device within {waited.TotalSeconds:0.###} s "
        + $"(Firecracker still answers '{faultMessage}'); the guest kernel needs CONFIG_VIRTIO_BALLOON and must have booted that far.")
{
    /// <summary>How long the activation was waited for.</summary>
    public TimeSpan Waited { get; } = waited;

    /// <summary>Firecracker's last answer to the size change.</summary>
    public string? FaultMessage { get; } = faultMessage;
}

/// <summary>
/// A memory size no configured mechanism can give the guest: more than its boot memory without a virtio-mem region
/// (or more than the region holds), or less than its boot memory without a balloon.
/// </summary>
public sealed class MemoryResizeException(int requestedMib, string message) : MicrovmException(message)
{
    /// <summary>The guest memory asked for, in MiB.</summary>
    public int RequestedMib { get; } = requestedMib;
}
