// `kiln limit`: the rate limits of a running VM's drives and interfaces, shown and changed at run time through the
// driver (PATCH /drives, PATCH /network-interfaces). What is printed is what Firecracker reports afterwards.
using System.CommandLine;
using System.Text.Json.Serialization;
using Kiln.Cli.Infrastructure;
using Kiln.Sandbox;
using Spectre.Console;

namespace Kiln.Cli.Commands;

internal static class LimitCommand
{
    public static Command Create(GlobalOptions globals)
    {
        var name = CommandExtensions.NameArgument();
        var drive = new Option<string?>("--drive") { Description = "The drive to limit, by its Firecracker id (rootfs, drive_N of the pool, disk_N, or the id given)." };
        var net = new Option<string?>("--net") { Description = "The network interface to limit, by its Firecracker id (sandbox_net for --network, ethN for --net)." };
        var bandwidth = new Option<string?>("--bandwidth") { Description = $"Bytes: {RateSpecs.Syntax}. Sizes count in 1024s." };
        var ops = new Option<string?>("--ops") { Description = $"Operations (block requests, network frames): {RateSpecs.Syntax}." };
        var rx = new Option<bool>("--rx") { Description = "With --net: only what the guest receives (default: both directions)." };
        var tx = new Option<bool>("--tx") { Description = "With --net: only what the guest sends (default: both directions)." };
        var command = new Command("limit", "Show a running VM's rate limits, or change one drive's or interface's (until the VM stops).")
        {
            name, drive, net, bandwidth, ops, rx, tx,
        };
        return command.WithAction(globals, async (context, cancellationToken) =>
        {
            var id = context.Value(name);
            var driveId = context.Value(drive);
            var interfaceId = context.Value(net);
            var change = context.Value(bandwidth) is null && context.Value(ops) is null ? null : new RateLimit
            {
                Bandwidth = context.Value(bandwidth) is { } b ? RateSpecs.Parse("--bandwidth", b) : null,
                Ops = context.Value(ops) is { } o ? RateSpecs.Parse("--ops", o) : null,
            };
            if (driveId is not null && interfaceId is not null)
                throw new UsageException("--drive and --net name two devices: change one at a time.");
            if ((context.Value(rx) || context.Value(tx)) && interfaceId is null)
                throw new UsageException("--rx and --tx choose a direction of a network interface: they need --net.");
            if (change is null && (driveId is not null || interfaceId is not null))
                throw new UsageException("say what to change: --bandwidth RATE and/or --ops RATE ('off' removes a limit).");
            if (change is not null && driveId is null && interfaceId is null)
                throw new UsageException("--bandwidth and --ops need the device they limit: --drive ID or --net ID.");

            await using var hypervisor = await Sandboxes.OpenAsync(context, id, cancellationToken);
            SandboxRateLimits limits;
            if (driveId is not null)
            {
                limits = new([await hypervisor.UpdateDriveRateLimitAsync(driveId, change!, cancellationToken)], []);
            }
            else if (interfaceId is not null)
            {
                // Neither flag, or both: both directions.
                var both = context.Value(rx) == context.Value(tx);
                var result = await hypervisor.UpdateInterfaceRateLimitsAsync(interfaceId,
                    both || context.Value(rx) ? change : null, both || context.Value(tx) ? change : null, cancellationToken);
                limits = new([], [result]);
            }
            else
            {
                limits = await hypervisor.GetRateLimitsAsync(cancellationToken);
            }
            Print(context, id, limits);
            return ExitCodes.Success;
        });
    }

    private static void Print(CommandContext context, string name, SandboxRateLimits limits)
    {
        if (context.Json)
        {
            Output.WriteJson(new LimitsJson(name,
                [.. limits.Drives.Select(d => new DriveLimitJson(d.DriveId, Bucket(d.Limit?.Bandwidth), Bucket(d.Limit?.Ops)))],
                [.. limits.Interfaces.Select(i => new InterfaceLimitJson(i.InterfaceId, Limit(i.Receive), Limit(i.Transmit)))]),
                LimitJsonContext.Default.LimitsJson);
            return;
        }
        var table = Output.NewTable("DEVICE", "KIND", "DIRECTION", "BANDWIDTH", "OPS");
        foreach (var d in limits.Drives)
            table.AddRow(Markup.Escape(d.DriveId), "drive", "-", RateSpecs.Format(d.Limit?.Bandwidth), RateSpecs.Format(d.Limit?.Ops));
        foreach (var i in limits.Interfaces)
        {
            table.AddRow(Markup.Escape(i.InterfaceId), "interface", "rx", RateSpecs.Format(i.Receive?.Bandwidth), RateSpecs.Format(i.Receive?.Ops));
            table.AddRow(Markup.Escape(i.InterfaceId), "interface", "tx", RateSpecs.Format(i.Transmit?.Bandwidth), RateSpecs.Format(i.Transmit?.Ops));
        }
        Output.Write(table);
    }

    private static BucketJson? Bucket(TokenBucketLimit? bucket) => bucket is null ? null : new(bucket.Size, bucket.RefillTimeMs, bucket.OneTimeBurst);

    private static LimitJson? Limit(RateLimit? limit) => limit is null ? null : new(Bucket(limit.Bandwidth), Bucket(limit.Ops));
}

internal sealed record BucketJson(long Size, long RefillTimeMs, long? OneTimeBurst);

internal sealed record LimitJson(BucketJson? Bandwidth, BucketJson? Ops);

internal sealed record DriveLimitJson(string Id, BucketJson? Bandwidth, BucketJson? Ops);

internal sealed record InterfaceLimitJson(string Id, LimitJson? Rx, LimitJson? Tx);

internal sealed record LimitsJson(string Name, IReadOnlyList<DriveLimitJson> Drives, IReadOnlyList<InterfaceLimitJson> Interfaces);

// Its own context (camelCase, nulls written, as CliJsonContext), so the command stays in one file.
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true)]
[JsonSerializable(typeof(LimitsJson))]
internal sealed partial class LimitJsonContext : JsonSerializerContext;
