using System.Text;
using FsCheck;
using FsCheck.Fluent;
using Kiln.FakeFirecracker.Json;

namespace Kiln.FakeFirecracker.Tests;

/// <summary>serde_json's wording and positions, including the multi-line cases Firecracker's own tests pin down.</summary>
public sealed class SerdeParserTests
{
    private static string Fail(string body, StructSpec spec)
    {
        var e = Assert.Throws<SerdeException>(() => SerdeParser.Parse(Encoding.UTF8.GetBytes(body), spec));
        return e.Message;
    }

    [Fact]
    public void A_missing_field_of_a_nested_struct_is_reported_at_its_closing_brace_on_its_line()
    {
        const string body = "{\n            \"snapshot_path\": \"foo\",\n            \"mem_backend\": {\n                \"backend_path\": \"bar\"\n            }\n        }";

        Assert.Equal("missing field `backend_type` at line 5 column 13", Fail(body, Schemas.SnapshotLoad));
    }

    [Fact]
    public void A_trailing_comma_points_at_the_closing_brace()
    {
        const string body = "{\n            \"snapshot_path\": \"foo\",\n            \"mem_backend\": {\n                \"backend_type\": \"File\",\n            }\n        }";

        Assert.Equal("trailing comma at line 5 column 13", Fail(body, Schemas.SnapshotLoad));
    }

    [Fact]
    public void A_missing_top_level_field_is_reported_after_the_last_brace()
    {
        const string body = "{\n            \"mem_backend\": {\n                \"backend_path\": \"bar\",\n                \"backend_type\": \"Uffd\"\n            }\n        }";

        Assert.Equal("missing field `snapshot_path` at line 6 column 9", Fail(body, Schemas.SnapshotLoad));
    }

    [Fact]
    public void An_unknown_field_lists_the_struct_fields_in_declaration_order()
    {
        Assert.Equal("unknown field `surprise`, expected one of `kernel_image_path`, `initrd_path`, `boot_args` at line 1 column 44",
            Fail("""{"kernel_image_path": "/vmlinux", "surprise": 1}""", Schemas.BootSource));
        Assert.Equal("unknown field `x`, expected `metrics_path` at line 1 column 4", Fail("""{"x": 1}""", Schemas.Metrics));
        Assert.Equal("unknown variant `Frozen`, expected `Paused` or `Resumed` at line 1 column 18", Fail("""{"state": "Frozen"}""", Schemas.Vm));
    }

    [Fact]
    public void Syntax_errors_use_serde_json_wording()
    {
        Assert.Equal("key must be a string at line 1 column 2", Fail("{not json", Schemas.BootSource));
        Assert.Equal("expected `:` at line 1 column 22", Fail("""{"kernel_image_path" 1}""", Schemas.BootSource));
        Assert.Equal("EOF while parsing a value at line 1 column 0", Fail("", Schemas.BootSource));
        Assert.Equal("invalid type: integer `5`, expected struct Vm at line 1 column 1", Fail("5", Schemas.Vm));
        Assert.Equal("expected `,` or `}` at line 1 column 20", Fail("""{"state": "Paused" "x": 1}""", Schemas.Vm));
        Assert.Equal("control character (\\u0000-\\u001F) found while parsing a string at line 1 column 13", Fail("{\"state\": \"a\u0001\"}", Schemas.Vm));
    }

    [Fact]
    public void Option_fields_accept_null_and_absent_fields_stay_absent()
    {
        var parsed = SerdeParser.Parse("""{"kernel_image_path": "/k", "initrd_path": null}"""u8.ToArray(), Schemas.BootSource)!.AsObject();

        Assert.Null(parsed["initrd_path"]);
        Assert.False(parsed.ContainsKey("boot_args"));
    }

    [FsCheck.Xunit.Property]
    public Property An_unknown_field_is_reported_just_after_its_key(NonEmptyString key, PositiveInt pad)
    {
        var name = new string(key.Get.Where(char.IsAsciiLetter).ToArray());
        var fields = Schemas.Vsock.Fields.Select(f => f.Name);
        return Prop.When(name.Length > 0 && !fields.Contains(name), () =>
        {
            var prefix = "{" + new string(' ', pad.Get % 40) + "\"" + name + "\"";
            var message = Fail(prefix + ": 1}", Schemas.Vsock);
            Assert.EndsWith($"at line 1 column {Encoding.UTF8.GetByteCount(prefix)}", message);
        });
    }

    [FsCheck.Xunit.Property]
    public bool Any_valid_machine_config_parses_back_to_its_values(byte vcpus, uint mem, bool smt)
    {
        var body = $$"""{"vcpu_count": {{vcpus}}, "mem_size_mib": {{mem}}, "smt": {{(smt ? "true" : "false")}}}""";
        var parsed = SerdeParser.Parse(Encoding.UTF8.GetBytes(body), Schemas.MachineConfig)!.AsObject();
        return parsed["vcpu_count"]!.GetValue<ulong>() == vcpus && parsed["mem_size_mib"]!.GetValue<ulong>() == mem && parsed["smt"]!.GetValue<bool>() == smt;
    }
}
