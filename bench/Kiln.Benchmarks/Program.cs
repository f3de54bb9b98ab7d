using BenchmarkDotNet.Running;
using Kiln.Benchmarks;

// `--interleaved` alternates the client and its floor in one process: a steadier ratio than BenchmarkDotNet's
// one-benchmark-after-the-other runs on a machine whose load drifts.
if (args is ["--interleaved", ..])
{
    await InterleavedCheck.RunAsync();
    return;
}

BenchmarkSwitcher.FromAssembly(typeof(ApiRoundTripBenchmark).Assembly).Run(args);
