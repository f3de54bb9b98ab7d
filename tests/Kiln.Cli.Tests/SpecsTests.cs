using FsCheck;
using FsCheck.Fluent;
using Kiln.Cli.Infrastructure;
using Kiln.Sandbox;

namespace Kiln.Cli.Tests;

public sealed class SpecsTests
{
    private static readonly string[] Words = ["console", "ttyS0", "reboot", "k", "panic", "1", "init", "/sbin/init", "a.b", "quiet", "x-y"];

    private static Gen<KernelParam> ParamGen =>
        from key in Gen.Elements(Words)
        from hasValue in Gen.Elements(true, false)
        from value in Gen.Elements(Words)
        select new KernelParam(key, hasValue ? value : null);

    [FsCheck.Xunit.Property]
    public Property Kernel_args_printed_with_spaces_parse_back_to_the_same_parameters() =>
        Prop.ForAll(Gen.ListOf(ParamGen).ToArbitrary(), parameters =>
        {
            var text = string.Join("   ", parameters.Select(p => p.ToString()));
            return Specs.ParseKernelArgs(text).SequenceEqual(parameters);
        });

    [Fact]
    public void Quoted_kernel_arg_values_keep_their_spaces_and_quotes()
    {
        var parsed = Specs.ParseKernelArgs("console=ttyS0 init=\"/bin/sh -c x\" quiet");

        Assert.Equal([new KernelParam("console", "ttyS0"), new KernelParam("init", "\"/bin/sh -c x\""), new KernelParam("quiet")], parsed);
    }

    [Fact]
    public void An_unbalanced_quote_in_kernel_args_is_bad_usage() =>
        Assert.Throws<UsageException>(() => Specs.ParseKernelArgs("init=\"/bin/sh"));

    [Fact]
    public void A_value_may_itself_contain_equals_signs() =>
        Assert.Equal([new KernelParam("root", "PARTUUID=abc")], Specs.ParseKernelArgs("root=PARTUUID=abc"));

    [Fact]
    public void A_net_spec_takes_a_tap_and_a_lowercased_mac()
    {
        var device = Specs.ParseNet("tap0,mac=AA:BB:cc:00:11:22");

        Assert.Equal("tap0", device.TapName);
        Assert.Equal("aa:bb:cc:00:11:22", device.MacAddress);
    }

    [Fact]
    public void A_drive_spec_ending_in_ro_is_read_only_and_absolute()
    {
        var file = Path.GetTempFileName();
        try
        {
            var device = Specs.ParseDrive(file + ":ro");

            Assert.True(device.ReadOnly);
            Assert.Equal(file, device.HostPath);
            Assert.False(Specs.ParseDrive(file).ReadOnly);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void The_root_option_wins_over_the_environment()
    {
        var root = StateRoot.Resolve("/tmp/a", name => name == "KILN_ROOT" ? "/tmp/b" : null, privileged: true);

        Assert.Equal("/tmp/a", root);
    }

    [Fact]
    public void KILN_ROOT_wins_over_the_defaults() =>
        Assert.Equal("/tmp/b", StateRoot.Resolve(null, name => name == "KILN_ROOT" ? "/tmp/b" : null, privileged: true));

    [Fact]
    public void Root_defaults_to_run_kiln_and_to_the_user_runtime_dir_otherwise()
    {
        Assert.Equal("/run/kiln", StateRoot.Resolve(null, _ => null, privileged: true));
        Assert.Equal("/run/user/1000/kiln", StateRoot.Resolve(null, n => n == "XDG_RUNTIME_DIR" ? "/run/user/1000" : null, privileged: false));
    }
}
