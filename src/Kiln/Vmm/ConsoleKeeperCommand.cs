namespace Kiln.Vmm;

/// <summary>
/// How to start a console keeper (see <see cref="ConsoleKeeper"/>): a program whose <c>Main</c> hands its arguments
/// to <see cref="ConsoleKeeper.RunAsync"/> after <paramref name="Arguments"/>. The <c>kiln</c> tool is one
/// (<c>kiln console-keeper …</c>, a hidden command); a library user points this at <c>kiln</c> or at a program of
/// their own that calls <see cref="ConsoleKeeper.RunAsync"/>.
/// </summary>
/// <param name="ExecutablePath">The program (absolute, or looked up on PATH).</param>
/// <param name="Arguments">What comes before the keeper's own arguments (a sub-command's name).</param>
public sealed record ConsoleKeeperCommand(string ExecutablePath, IReadOnlyList<string> Arguments)
{
    /// <summary>
    /// This very program with <paramref name="arguments"/> first: its apphost, or <c>dotnet</c> with its entry
    /// assembly when it was started as <c>dotnet app.dll</c>.
    /// </summary>
    public static ConsoleKeeperCommand ForThisProgram(params string[] arguments)
    {
        var process = Environment.ProcessPath ?? throw new InvalidOperationException("This process's executable is unknown");
        // Assembly.Location is empty in a single-file or native program; a program run by dotnet is a file beside it.
        if (Path.GetFileNameWithoutExtension(process) == "dotnet"
            && System.Reflection.Assembly.GetEntryAssembly()?.GetName().Name is { Length: > 0 } entry)
            return new ConsoleKeeperCommand(process, [Path.Combine(AppContext.BaseDirectory, entry + ".dll"), .. arguments]);
        return new ConsoleKeeperCommand(process, arguments);
    }
}
