// Every parser kiln owns for option values, fed arbitrary strings and near-misses built from their own tokens: each
// value parses or is refused with UsageException (kiln's exit-2 path), never another exception; where kiln prints a
// value back (rates), printing and parsing again gives the same value.
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Kiln.Cli.Commands;
using Kiln.Cli.Infrastructure;
using Kiln.Sandbox;

namespace Kiln.Cli.Tests;

public sealed class CliParserPropertyTests
{
    private const int Inputs = 2000;

    private static Gen<string> AnyString => ArbMap.Default.GeneratorFor<string>().Select(s => s ?? "");

    /// <summary>Strings made of <paramref name="tokens"/> (and now and then any string), so near-valid values are common.</summary>
    private static Arbitrary<string> Soup(params string[] tokens) =>
        Gen.OneOf(
            Gen.ListOf(Gen.Elements(tokens)).Select(parts => string.Concat(parts)),
            from head in Gen.ListOf(Gen.Elements(tokens))
            from noise in AnyString
            from tail in Gen.ListOf(Gen.Elements(tokens))
            select string.Concat(head) + noise + string.Concat(tail),
            AnyString).ToArbitrary();

    private static readonly string[] SizeTokens = ["0", "1", "7", "12", "512", "1024", "9223372036854775807", "99999999999999999999", "K", "k", "M", "m", "G", "g", "T", "MiB", "GiB", "MB", " ", "-", "+", ".", "e3", "٣"];

    private static bool ParsesOrIsUsage(Action parse)
    {
        try
        {
            parse();
        }
        catch (UsageException)
        {
        }
        return true;
    }

    [Property(MaxTest = Inputs)]
    public Property Rates_parse_or_are_usage_errors() =>
        Prop.ForAll(Soup([.. SizeTokens, "/", "s", "ms", "1s", "100ms", ",", "burst=", "off", "OFF"]), text =>
            ParsesOrIsUsage(() => RateSpecs.Parse("--bandwidth", text)));

    [Property(MaxTest = 500)]
    public Property A_printed_rate_parses_back_to_the_same_bucket() =>
        Prop.ForAll(
            (from size in Gen.OneOf(Gen.Choose(1, int.MaxValue).Select(i => (long)i), Gen.Choose(1, 1 << 20).Select(i => (long)i << 20))
             from refill in Gen.OneOf(Gen.Choose(1, 5000).Select(i => (long)i), Gen.Choose(1, 3600).Select(i => i * 1000L))
             from burst in Gen.OneOf(Gen.Constant<long?>(null), Gen.Choose(1, int.MaxValue).Select(i => (long?)i))
             select new TokenBucketLimit(size, refill, burst)).ToArbitrary(),
            bucket => RateSpecs.Parse("--bandwidth", RateSpecs.Format(bucket)) == bucket);

    [Property(MaxTest = Inputs)]
    public Property Sizes_parse_or_are_refused_never_thrown() =>
        Prop.ForAll(Soup(SizeTokens), text =>
        {
            _ = ImageCommands.ParseSize(text); // null: refused (the command turns it into a usage error)
            return ParsesOrIsUsage(() => JailSpecs.ParseSize(text)) && ParsesOrIsUsage(() => MemoryCommands.ParseSize(text));
        });

    [Property(MaxTest = 500)]
    public Property A_size_with_a_unit_is_that_many_units() =>
        Prop.ForAll(Gen.Choose(0, int.MaxValue).ToArbitrary(), Gen.Elements(("", 0), ("K", 10), ("M", 20), ("G", 30)).ToArbitrary(), (n, unit) =>
            JailSpecs.ParseSize($"{n}{unit.Item1}") == (long)n << unit.Item2
            && ImageCommands.ParseSize($"{n}{unit.Item1.ToLowerInvariant()}") == (long)n << unit.Item2);

    [Property(MaxTest = Inputs)]
    public Property Net_specs_parse_or_are_usage_errors() =>
        Prop.ForAll(Soup("tap0", "eth", "x", "%", "/", ":", ".", " ", ",", "mac=", "06:00:ac:10:00:02", "0G", "ff", "aaaaaaaaaaaaaaaa", "\u00a0"), text =>
            ParsesOrIsUsage(() => Specs.ParseNet(text)));

    [Property(MaxTest = 500)]
    public Property A_tap_and_mac_parse_to_themselves() =>
        Prop.ForAll(
            Gen.Choose(1, 15).SelectMany(n => Gen.ArrayOf(Gen.Elements("abcdefghijklmnopqrstuvwxyz0123456789-_".ToCharArray()), n)).Select(c => new string(c)).ToArbitrary(),
            Gen.ArrayOf(Gen.Choose(0, 255), 6).Select(b => string.Join(':', b.Select(x => x.ToString("X2", System.Globalization.CultureInfo.InvariantCulture)))).ToArbitrary(),
            (tap, mac) =>
            {
                var net = Specs.ParseNet($"{tap},mac={mac}");
                // kiln keeps a MAC in lower case.
                return net.TapName == tap && string.Equals(net.MacAddress, mac.ToLowerInvariant(), StringComparison.Ordinal);
            });

    [Property(MaxTest = Inputs)]
    public Property Network_modes_and_addresses_parse_or_are_usage_errors() =>
        Prop.ForAll(
            Soup("isolated", "nat", "none", "netns:", "/run/netns/", "kiln-x", "../", "/", "\0"),
            Gen.OneOf(Gen.Constant<string?>(null), Soup("10", ".", "0", "255", "256", "/", "24", "30", "31", "32", "1", ":", "a").Generator.Select(s => (string?)s)).ToArbitrary(),
            (mode, ip) => ParsesOrIsUsage(() => Specs.ParseNetwork(mode, ip)));

    [Property(MaxTest = Inputs)]
    public Property Drive_specs_parse_or_are_usage_errors() =>
        Prop.ForAll(Soup("/", "tmp", "/dev/null", "/proc", ":ro", ":rw", ":", "..", " ", "\0", "x"), text =>
            ParsesOrIsUsage(() => Specs.ParseDrive(text)));

    [Property(MaxTest = Inputs)]
    public Property Kernel_args_network_overrides_and_tap_names_parse_or_are_usage_errors() =>
        Prop.ForAll(Soup("console=ttyS0", " ", "\"", "=", "eth0", "tap7", "init=\"/bin/sh -c x\"", "\t", "-", "--"), text =>
            ParsesOrIsUsage(() => Specs.ParseKernelArgs(text))
            && ParsesOrIsUsage(() => RestoreCommand.ParseNetworkOverride(text))
            && ParsesOrIsUsage(() => _ = Specs.TapNameProblem(text)));
}
