using BenchmarkDotNet.Running;

BenchmarkSwitcher.FromAssembly(typeof(Kiln.Benchmarks.ApiRoundTripBenchmark).Assembly).Run(args);
