// What a failed request says about its effect. Firecracker's API thread hands each request it has read to the VMM,
// waits for the outcome and only then answers (src/firecracker/src/api_server/mod.rs: ApiServer::run,
// serve_vmm_action_request; a failed respond is only logged). So a request whose answer the caller gave up on may
// have taken effect, while a refusal is an answer, and a connection that was refused or closed before the answer
// means Firecracker never read the request or is gone.
namespace Kiln.Api;

/// <summary>Tells whether a request that failed may still have been carried out by Firecracker.</summary>
public static class UnansweredRequest
{
    /// <summary>
    /// True when <paramref name="failure"/> means the caller gave up on the answer (cancelled, or
    /// <see cref="FirecrackerClientOptions.RequestTimeout"/> passed): Firecracker may have acted on the request. False
    /// for a refusal (<see cref="FirecrackerApiException"/>: nothing changed) and for a connection error.
    /// </summary>
    public static bool MayHaveTakenEffect(Exception failure)
    {
        ArgumentNullException.ThrowIfNull(failure);
        return failure is OperationCanceledException or FirecrackerTimeoutException;
    }
}
