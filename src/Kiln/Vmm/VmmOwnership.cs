namespace Kiln.Vmm;

/// <summary>Who owns a VMM process.</summary>
public enum VmmOwnership
{
    /// <summary>
    /// The VMM dies with the process that started it: killed on dispose and on process exit, and (through
    /// PR_SET_PDEATHSIG) even when the owner is SIGKILLed. It never outlives its owner by accident.
    /// </summary>
    Owned,

    /// <summary>
    /// The VMM runs in its own session with its output going straight to the console file, survives its starter,
    /// and is owned by whoever recorded its identity: a later owner re-attaches and stops it (<c>kiln run --detach</c>).
    /// </summary>
    Detached,
}
