namespace Kiln.FakeFirecracker.Vmm;

/// <summary>A request Firecracker refuses before it reaches the VMM (RequestError): bad path, bad id, bad body.</summary>
/// The debug form is how Firecracker logs it: <c>{:?}</c> of the RequestError.
internal sealed class RequestErrorException(string message, string debugForm, int status = 400) : Exception(message)
{
    public string DebugForm { get; } = debugForm;
    public int Status { get; } = status;
}

/// <summary>A VmmActionError: the request was well-formed but the VMM refused it.</summary>
internal sealed class VmmActionException(string message, int status = 400) : Exception(message)
{
    public int Status { get; } = status;
}

internal static class Faults
{
    public const string NotSupportedPreBoot = "The requested operation is not supported before starting the microVM.";
    public const string NotSupportedPostBoot = "The requested operation is not supported after starting the microVM.";
    public const string DeviceNotFound = "Failed perform action on device: Device not found";
}
