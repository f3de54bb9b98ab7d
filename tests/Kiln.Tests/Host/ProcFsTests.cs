using Kiln.Host;

namespace Kiln.Tests.Host;

public sealed class ProcFsTests
{
    [Fact]
    public void Start_time_is_field_22_even_when_the_name_holds_spaces_and_parentheses()
    {
        var line = "1234 (fc_vcpu (0) x) S 1 1234 1234 0 -1 4194560 100 0 0 0 5 6 0 0 20 0 3 0 987654 1000 10 18446744073709551615";
        Assert.Equal(987654UL, ProcFs.ParseStartTime(line));
    }

    [Fact]
    public void A_truncated_stat_line_has_no_start_time() =>
        Assert.Null(ProcFs.ParseStartTime("1234 (x) S 1 2 3"));

    [Fact]
    public void The_current_process_has_an_identity_that_matches_itself()
    {
        var identity = ProcFs.TryGetIdentity(Environment.ProcessId);
        Assert.NotNull(identity);
        Assert.True(ProcFs.IsSameProcess(identity));
        Assert.False(ProcFs.IsSameProcess(identity with { StartTimeTicks = identity.StartTimeTicks + 1 }));
        Assert.False(ProcFs.IsSameProcess(identity with { ExecutablePath = "/not/the/binary" }));
    }

    [Fact]
    public void Threads_of_the_current_process_include_the_main_thread()
    {
        var threads = ProcFs.GetThreads(Environment.ProcessId);
        Assert.Contains(threads, t => t.Id == Environment.ProcessId);
    }

    [Fact]
    public void A_process_that_does_not_exist_has_no_threads_and_no_identity()
    {
        Assert.Empty(ProcFs.GetThreads(int.MaxValue));
        Assert.Null(ProcFs.TryGetIdentity(int.MaxValue));
    }

    [Fact]
    public void Vcpu_threads_are_parsed_from_names_with_a_space_before_the_index()
    {
        ProcessThread[] threads = [new(10, "firecracker"), new(11, "fc_api"), new(12, "fc_vcpu 0"), new(13, "fc_vcpu 1"), new(14, "kvm-nx-lpage-re")];
        var map = ProcFs.ParseVcpuThreads(threads);
        Assert.Equal(new Dictionary<int, int> { [0] = 12, [1] = 13 }, map);
    }

    [Fact]
    public void A_malformed_vcpu_thread_name_is_an_error() =>
        Assert.Throws<FormatException>(() => ProcFs.ParseVcpuThreads([new ProcessThread(1, "fc_vcpu x")]));
}

public sealed class ZombieTests
{
    [Theory]
    [InlineData("12 (a b) Z 1 2", true)]
    [InlineData("12 (a) Z) S 1 2", false)]
    [InlineData("12 (x) X 1", true)]
    [InlineData("12 (x) R 1", false)]
    public void Zombies_are_recognised_from_the_state_after_the_name(string line, bool zombie) =>
        Assert.Equal(zombie, ProcFs.IsZombie(line));
}
