using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using Kiln.Api;
using NSwag;

namespace Kiln.Tests.Api;

public sealed class SpecConformanceTests
{
    private static readonly Type[] WireRecordTypes = typeof(FirecrackerClient).Assembly.GetTypes()
        .Where(t => t.Namespace == "Kiln.Api" && t.IsPublic && t.IsSealed && t.GetMethod("<Clone>$") is not null)
        .Where(t => t != typeof(FirecrackerClientOptions))
        .ToArray();

    public static TheoryData<string> DefinitionTypes() => [.. Samples.Definitions().Select(d => d.Type.Name)];

    public static TheoryData<string> OperationIds() => [.. SpecDocument.Operations().Select(o => o.OperationId)];

    private static Type TypeNamed(string name) => typeof(FirecrackerClient).Assembly.GetType("Kiln.Api." + name)!;

    [Fact]
    public void The_spec_has_38_operations_and_every_definition_but_free_form_mmds_has_a_wire_type()
    {
        Assert.Equal(38, SpecDocument.Operations().Count());
        var covered = Samples.Definitions().Select(d => d.Definition).Append(nameof(CpuTemplate)).ToHashSet();
        var missing = SpecDocument.Get().Definitions.Keys.Where(k => k != "MmdsContentsObject" && !covered.Contains(k));
        Assert.Empty(missing);
    }

    [Fact]
    public void Every_wire_record_has_a_populated_sample_and_is_registered_in_the_json_context()
    {
        Assert.NotEmpty(WireRecordTypes);
        var sampled = Samples.Definitions().Select(d => d.Type).ToHashSet();
        Assert.Empty(WireRecordTypes.Where(t => !sampled.Contains(t)).Select(t => t.Name));
        foreach (var type in WireRecordTypes)
            Assert.NotNull(FirecrackerJsonContext.Default.GetTypeInfo(type));
    }

    [Theory]
    [MemberData(nameof(DefinitionTypes))]
    public void A_populated_record_sets_every_property(string typeName)
    {
        var type = TypeNamed(typeName);
        var sample = Samples.For(type);
        var unset = type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.Name != "ExtensionData" && p.GetCustomAttribute<System.Text.Json.Serialization.JsonIgnoreAttribute>() is null)
            .Where(p => p.GetValue(sample) is null)
            .Select(p => p.Name);
        Assert.Empty(unset);
    }

    [Theory]
    [MemberData(nameof(DefinitionTypes))]
    public void A_populated_record_serialises_to_exactly_what_its_spec_definition_allows(string typeName)
    {
        var type = TypeNamed(typeName);
        var json = JsonSerializer.Serialize(Samples.For(type), type, FirecrackerJsonContext.Default);

        var problems = SpecDocument.Problems(json, SpecDocument.Definition(Samples.DefinitionOf(type)));

        // ApiError also reads the out-of-spec {"error": "..."} body Firecracker sends for unparseable requests.
        if (type == typeof(ApiError))
            problems.RemoveAll(p => p is "$.error is not in the spec" or "NoAdditionalPropertiesAllowed: #/error");
        Assert.Empty(problems);
    }

    [Theory]
    [MemberData(nameof(OperationIds))]
    public async Task Every_spec_operation_has_a_client_method_that_sends_its_method_path_and_a_valid_body(string operationId)
    {
        var ct = TestContext.Current.CancellationToken;
        var (_, method, pathTemplate, operation) = SpecDocument.Operations().Single(o => o.OperationId == operationId);
        var clientMethod = typeof(FirecrackerClient).GetMethod(char.ToUpperInvariant(operationId[0]) + operationId[1..] + "Async");
        Assert.NotNull(clientMethod);

        var result = await CallAgainstScriptedServerAsync(clientMethod, ct);

        Assert.Equal(method, result.Request.Method);
        var pattern = "^" + System.Text.RegularExpressions.Regex.Replace(pathTemplate, @"\{[^}]+\}", "([A-Za-z0-9_]+)") + "$";
        var match = System.Text.RegularExpressions.Regex.Match(result.Request.Target, pattern);
        Assert.True(match.Success, $"{result.Request.Target} does not match {pathTemplate}");

        var bodyParameter = operation.Parameters.SingleOrDefault(p => p.Kind == OpenApiParameterKind.Body);
        if (bodyParameter is null)
        {
            Assert.Equal("", result.Request.Body);
            return;
        }
        Assert.Equal("application/json", result.Request.Headers["Content-Type"]);
        Assert.Empty(SpecDocument.Problems(result.Request.Body, bodyParameter.Schema.ActualSchema));
        if (match.Groups.Count > 1)
        {
            // Firecracker refuses a body whose id differs from the path's.
            var body = JsonNode.Parse(result.Request.Body)!.AsObject();
            var bodyId = (body["drive_id"] ?? body["iface_id"] ?? body["id"])!.GetValue<string>();
            Assert.Equal(match.Groups[1].Value, bodyId);
        }
    }

    [Theory]
    [InlineData(nameof(FirecrackerClient.DeleteGuestDriveByIDAsync), "DELETE /drives/id_1")]
    [InlineData(nameof(FirecrackerClient.DeleteGuestNetworkInterfaceByIDAsync), "DELETE /network-interfaces/id_1")]
    [InlineData(nameof(FirecrackerClient.DeleteGuestPmemByIDAsync), "DELETE /pmem/id_1")]
    [InlineData(nameof(FirecrackerClient.StartInstanceAsync), "PUT /actions")]
    [InlineData(nameof(FirecrackerClient.SendCtrlAltDelAsync), "PUT /actions")]
    [InlineData(nameof(FirecrackerClient.FlushMetricsAsync), "PUT /actions")]
    [InlineData(nameof(FirecrackerClient.PauseAsync), "PATCH /vm")]
    [InlineData(nameof(FirecrackerClient.ResumeAsync), "PATCH /vm")]
    public async Task Unplug_calls_the_spec_omits_and_convenience_calls_send_the_expected_request(string methodName, string expectedLine)
    {
        var ct = TestContext.Current.CancellationToken;
        var clientMethod = typeof(FirecrackerClient).GetMethod(methodName)!;

        var result = await CallAgainstScriptedServerAsync(clientMethod, ct);

        Assert.Equal(expectedLine, result.Request.Line);
        if (result.Request.Method == "DELETE")
            Assert.False(result.Request.Headers.ContainsKey("Content-Length"));
    }

    [Theory]
    [InlineData(nameof(FirecrackerClient.StartInstanceAsync), """{"action_type":"InstanceStart"}""")]
    [InlineData(nameof(FirecrackerClient.SendCtrlAltDelAsync), """{"action_type":"SendCtrlAltDel"}""")]
    [InlineData(nameof(FirecrackerClient.FlushMetricsAsync), """{"action_type":"FlushMetrics"}""")]
    [InlineData(nameof(FirecrackerClient.PauseAsync), """{"state":"Paused"}""")]
    [InlineData(nameof(FirecrackerClient.ResumeAsync), """{"state":"Resumed"}""")]
    public async Task Convenience_calls_send_the_body_firecracker_expects(string methodName, string expectedBody)
    {
        var result = await CallAgainstScriptedServerAsync(typeof(FirecrackerClient).GetMethod(methodName)!, TestContext.Current.CancellationToken);

        Assert.Equal(expectedBody, result.Request.Body);
    }

    private sealed record CallResult(RecordedRequest Request, object? Returned);

    private static async Task<CallResult> CallAgainstScriptedServerAsync(MethodInfo clientMethod, CancellationToken ct)
    {
        using var dir = new TestDirectory();
        var returnType = clientMethod.ReturnType.IsGenericType ? clientMethod.ReturnType.GetGenericArguments()[0] : null;
        var answer = returnType is null
            ? ScriptedUnixServer.NoContent()
            : ScriptedUnixServer.Response(200, JsonSerializer.Serialize(Samples.For(returnType), returnType, FirecrackerJsonContext.Default));
        await using var server = ScriptedUnixServer.Answering(dir.File("api.sock"), _ => answer);
        await using var client = new FirecrackerClient(server.SocketPath);

        var arguments = clientMethod.GetParameters()
            .Select(p => p.ParameterType == typeof(CancellationToken) ? ct
                : p.ParameterType == typeof(string) ? "id_1"
                : Samples.For(p.ParameterType))
            .ToArray();
        var task = (Task)clientMethod.Invoke(client, arguments)!;
        await task;
        object? returned = returnType is null ? null : task.GetType().GetProperty("Result")!.GetValue(task);
        if (returnType is not null)
        {
            Assert.Equal(
                JsonSerializer.Serialize(Samples.For(returnType), returnType, FirecrackerJsonContext.Default),
                JsonSerializer.Serialize(returned, returnType, FirecrackerJsonContext.Default));
        }
        var request = await server.Requests.Reader.ReadAsync(ct);
        return new CallResult(request, returned);
    }
}
