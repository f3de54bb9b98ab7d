namespace Kiln.Vm;

/// <summary>
/// One named step of a VM's boot sequence (go-sdk's handler chain, Kata's startSandbox): the name is what a failure,
/// a trace span and a log line report.
/// </summary>
/// <param name="Name">A short, stable name, e.g. <c>machine-config</c>.</param>
/// <param name="Run">The step itself.</param>
public sealed record BootStep(string Name, Func<CancellationToken, Task> Run);
