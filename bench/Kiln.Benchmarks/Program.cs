using BenchmarkDotNet.Running;
using Kiln.Benchmarks;

// The stand-in VMMs the benchmarks start (and SIGKILL by the thousand) are .NET processes: each would open a runtime
// diagnostic socket and debugger pipes in $TMPDIR that nothing removes after a SIGKILL (tens of thousands of files
// after a few density runs). Their environment is built from this process's, so turning diagnostics off here turns
// them off there, as the test projects do (tests/Shared/NoDiagnosticFiles.cs). Set it to 1 to profile a VMM.
if (Environment.GetEnvironmentVariable("DOTNET_EnableDiagnostics") is null)
    Environment.SetEnvironmentVariable("DOTNET_EnableDiagnostics", "0");

// `--interleaved` alternates the client and its floor in one process: a steadier ratio than BenchmarkDotNet's
// one-benchmark-after-the-other runs on a machine whose load drifts.
if (args is ["--interleaved", ..])
{
    await InterleavedCheck.RunAsync();
    return;
}

// `--paired N` does the same for driver start: N alternating pairs of driver start and its hand-written floor.
if (args is ["--paired", var count, ..])
{
    await StartBenchmark.RunPairedAsync(int.Parse(count, System.Globalization.CultureInfo.InvariantCulture));
    return;
}

// `--vsock N`: N alternating rounds of the vsock dialer and its raw-socket floor (connect, round trip, throughput).
if (args is ["--vsock", var vsockRounds, ..])
{
    await VsockBenchmark.RunPairedAsync(int.Parse(vsockRounds, System.Globalization.CultureInfo.InvariantCulture));
    return;
}

// `--metrics` alternates the metrics parser (and publisher) with a bare Utf8JsonReader pass over the same line.
if (args is ["--metrics", ..])
{
    MetricsParseBenchmark.RunInterleaved();
    return;
}

// `--jail-paired N`: N alternating pairs of plain and jailed start (root only).
if (args is ["--jail-paired", var jailPairs, ..])
{
    await JailStartBenchmark.RunPairedAsync(int.Parse(jailPairs, System.Globalization.CultureInfo.InvariantCulture));
    return;
}

// `--start-paths N`: N alternating boots of one described microVM through the API sequence and through --config-file.
if (args is ["--start-paths", var n, ..])
{
    await StartPathBenchmark.RunPairedAsync(int.Parse(n, System.Globalization.CultureInfo.InvariantCulture));
    return;
}

// `--agent-vsock N`: exec through a microVM's vsock (stand-in, or a real guest) against a raw hybrid-vsock floor,
// then template restore → first exec.
if (args is ["--agent-vsock", var vsockPairs, ..])
{
    await AgentVsockExecBenchmark.RunPairedAsync(int.Parse(vsockPairs, System.Globalization.CultureInfo.InvariantCulture));
    return;
}

// `--agent N`: exec through the guest agent (round trip of `true`, 100 MiB stdout) against a raw-socket floor.
if (args is ["--agent", var agentPairs, ..])
{
    await AgentExecBenchmark.RunPairedAsync(int.Parse(agentPairs, System.Globalization.CultureInfo.InvariantCulture));
    return;
}

// `--restore N [pairs]`: N alternating snapshot restores through Kiln and a hand-written floor; then 1/10/50 template
// clones (not with `pairs`).
if (args is ["--restore", var r, .. var restoreRest])
{
    await RestoreBenchmark.RunAsync(int.Parse(r, System.Globalization.CultureInfo.InvariantCulture), withClones: restoreRest is not ["pairs", ..]);
    return;
}

// `--vm-cache N`: N alternating template sandbox starts from a warm VM cache and by a direct restore.
if (args is ["--vm-cache", var cachePairs, ..])
{
    await VmCacheBenchmark.RunAsync(int.Parse(cachePairs, System.Globalization.CultureInfo.InvariantCulture));
    return;
}

// `--density N [rounds [driver|floor|both [warm-up rounds [api|config-file]]]]`: N microVMs started at once by this process,
// driver against a hand-written floor in alternating rounds: the controller's CPU, memory and threads per VM. The last
// argument is the driver's start path (the API sequence by default).
if (args is ["--density", var density, .. var densityRest])
{
    await DensityBenchmark.RunAsync(int.Parse(density, System.Globalization.CultureInfo.InvariantCulture),
        densityRest is [var densityRounds, ..] ? int.Parse(densityRounds, System.Globalization.CultureInfo.InvariantCulture) : 3,
        densityRest is [_, var side, ..] && side != "both" ? side : null,
        densityRest is [_, _, var warmups, ..] ? int.Parse(warmups, System.Globalization.CultureInfo.InvariantCulture) : 1,
        densityRest is [_, _, _, "config-file", ..] ? Kiln.Vm.MicrovmStartPath.ConfigFile : Kiln.Vm.MicrovmStartPath.Api);
    return;
}

BenchmarkSwitcher.FromAssembly(typeof(ApiRoundTripBenchmark).Assembly).Run(args);
