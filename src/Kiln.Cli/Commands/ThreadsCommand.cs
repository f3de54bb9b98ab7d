using System.CommandLine;
using Kiln.Cli.Infrastructure;
using Spectre.Console;

namespace Kiln.Cli.Commands;

/// <summary><c>kiln threads</c>: vCPU index → host thread id (for pinning with taskset, say).</summary>
internal static class ThreadsCommand
{
    public static Command Create(GlobalOptions globals)
    {
        var name = CommandExtensions.NameArgument();
        var command = new Command("threads", "Show the host thread id of each vCPU.") { name };
        return command.WithAction(globals, async (context, cancellationToken) =>
        {
            var id = context.Value(name);
            await using var hypervisor = await Sandboxes.OpenAsync(context, id, cancellationToken);
            var threads = await hypervisor.GetVcpuThreadIdsAsync(cancellationToken);
            var result = new ThreadsJson(id, hypervisor.Pid, [.. threads.OrderBy(t => t.Key).Select(t => new VcpuThreadJson(t.Key, t.Value))]);
            if (context.Json)
            {
                Output.WriteJson(result, CliJsonContext.Default.ThreadsJson);
                return ExitCodes.Success;
            }
            var table = Output.NewTable("VCPU", "THREAD ID");
            foreach (var vcpu in result.Vcpus)
                table.AddRow(vcpu.Index.ToString(), vcpu.ThreadId.ToString());
            Output.Write(table);
            return ExitCodes.Success;
        });
    }
}
