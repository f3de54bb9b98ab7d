// The VM cache's owner for the owner-kill tests: starts a VmCache of one template, says "READY full" once every slot
// holds a paused clone, and blocks; with --hold PHASE it blocks instead when that span (a refill's restore step) or
// log event begins, so that a test can SIGKILL it there.
//
//   Kiln.TestOwner vm-cache --template T --firecracker F --dir D [--size N] [--hold PHASE]
using System.Diagnostics;
using Kiln.Sandbox;

internal static class VmCacheOwner
{
    public static async Task<int> RunAsync(string[] args)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i + 1 < args.Length; i += 2)
            values[args[i]] = args[i + 1];
        string Require(string name) => values.GetValueOrDefault(name) ?? throw new ArgumentException($"{name} is required");
        var hold = values.GetValueOrDefault("--hold");

        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == "Kiln",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllData,
            ActivityStarted = activity => Hold.AtSpan(hold, activity),
        };
        ActivitySource.AddActivityListener(listener);
        using var loggerFactory = new HoldingLoggerFactory(hold);

        await using var cache = await VmCache.StartAsync(new VmCacheOptions
        {
            TemplateDirectory = Require("--template"),
            FirecrackerPath = Require("--firecracker"),
            Directory = Require("--dir"),
            Size = int.Parse(values.GetValueOrDefault("--size") ?? "2", System.Globalization.CultureInfo.InvariantCulture),
            LoggerFactory = loggerFactory,
        });
        await cache.WaitUntilFullAsync();
        Hold.IfMatches(hold, "operation-done", exact: true);
        Console.Out.WriteLine("READY full");
        Console.Out.Flush();
        Thread.Sleep(Timeout.Infinite);
        return 0;
    }
}
