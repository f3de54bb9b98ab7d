// What an API-tier test runs against: the stand-in always, and real Firecracker when KILN_FIRECRACKER names one.
// A test takes the target's name as a theory argument, so each case is reported once per target and the real one is
// SKIPPED with the reason when no binary is configured.
using Kiln.Testing;

namespace Kiln.FakeFirecracker.Tests.Infrastructure;

public sealed record FirecrackerTarget(string Name, string BinaryPath)
{
    public const string StandInName = "stand-in";
    public const string RealName = "real";

    public static FirecrackerTarget StandIn { get; } = new(StandInName, FakeProcess.BinaryPath);

    public static TheoryData<string> Names => [StandInName, RealName];

    public bool IsReal => Name == RealName;

    /// <summary>The named target; skips the test when it is real Firecracker and none is configured.</summary>
    public static FirecrackerTarget Require(string name) => name switch
    {
        StandInName => StandIn,
        RealName => new FirecrackerTarget(RealName, RealFirecracker.RequireBinary()),
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, "a target is 'stand-in' or 'real'"),
    };

    /// <summary>Every row of <paramref name="rows"/> once per target (the target's name last).</summary>
    public static TheoryData<T1, T2, T3, string> Each<T1, T2, T3>(TheoryData<T1, T2, T3> rows)
    {
        var all = new TheoryData<T1, T2, T3, string>();
        foreach (var target in new[] { StandInName, RealName })
        {
            foreach (var row in rows)
            {
                var (a, b, c) = row.Data;
                all.Add(a, b, c, target);
            }
        }

        return all;
    }

    /// <inheritdoc cref="Each{T1, T2, T3}(TheoryData{T1, T2, T3})"/>
    public static TheoryData<T1, T2, T3, T4, string> Each<T1, T2, T3, T4>(TheoryData<T1, T2, T3, T4> rows)
    {
        var all = new TheoryData<T1, T2, T3, T4, string>();
        foreach (var target in new[] { StandInName, RealName })
        {
            foreach (var row in rows)
            {
                var (a, b, c, d) = row.Data;
                all.Add(a, b, c, d, target);
            }
        }

        return all;
    }

    /// <inheritdoc cref="Each{T1, T2, T3}(TheoryData{T1, T2, T3})"/>
    public static TheoryData<T1, T2, T3, T4, T5, string> Each<T1, T2, T3, T4, T5>(TheoryData<T1, T2, T3, T4, T5> rows)
    {
        var all = new TheoryData<T1, T2, T3, T4, T5, string>();
        foreach (var target in new[] { StandInName, RealName })
        {
            foreach (var row in rows)
            {
                var (a, b, c, d, e) = row.Data;
                all.Add(a, b, c, d, e, target);
            }
        }

        return all;
    }

    public override string ToString() => Name;
}
