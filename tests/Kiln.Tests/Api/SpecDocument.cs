using NJsonSchema;
using NSwag;

namespace Kiln.Tests.Api;

/// <summary>The Firecracker v1.16.1 swagger spec from the test assets, loaded once.</summary>
internal static class SpecDocument
{
    public static string AssetPath(params string[] parts) => Path.Combine([AppContext.BaseDirectory, "assets", .. parts]);

    private static readonly Lazy<OpenApiDocument> Document = new(() =>
        OpenApiYamlDocument.FromFileAsync(AssetPath("firecracker.yaml")).GetAwaiter().GetResult());

    public static OpenApiDocument Get() => Document.Value;

    /// <summary>Every operation of the spec: operationId, upper-case method, path template.</summary>
    public static IEnumerable<(string OperationId, string Method, string Path, OpenApiOperation Operation)> Operations()
    {
        foreach (var (path, item) in Get().Paths)
        {
            foreach (var (method, operation) in item)
                yield return (operation.OperationId, method.ToUpperInvariant(), path, operation);
        }
    }

    public static JsonSchema Definition(string name) => Get().Definitions[name];

    /// <summary>
    /// Problems of <paramref name="json"/> against <paramref name="schema"/>: the validator's findings plus any
    /// property the schema does not declare (the spec leaves additionalProperties open, Firecracker does not).
    /// </summary>
    public static List<string> Problems(string json, JsonSchema schema)
    {
        var problems = schema.Validate(json).Select(e => e.ToString()).ToList();
        CollectExtras(System.Text.Json.Nodes.JsonNode.Parse(json), schema.ActualSchema, "$", problems);
        return problems;
    }

    private static void CollectExtras(System.Text.Json.Nodes.JsonNode? node, JsonSchema schema, string where, List<string> problems)
    {
        switch (node)
        {
            case System.Text.Json.Nodes.JsonObject obj when schema.ActualProperties.Count > 0 || schema.Type.HasFlag(JsonObjectType.Object):
                if (schema.AllowAdditionalProperties && schema.ActualProperties.Count == 0)
                    return;
                foreach (var (name, value) in obj)
                {
                    if (!schema.ActualProperties.TryGetValue(name, out var property))
                    {
                        problems.Add($"{where}.{name} is not in the spec");
                        continue;
                    }
                    CollectExtras(value, property.ActualSchema, $"{where}.{name}", problems);
                }
                foreach (var required in schema.RequiredProperties)
                {
                    if (!obj.ContainsKey(required))
                        problems.Add($"{where}.{required} is required but missing");
                }
                break;
            case System.Text.Json.Nodes.JsonArray array when schema.Item is not null:
                for (var i = 0; i < array.Count; i++)
                    CollectExtras(array[i], schema.Item.ActualSchema, $"{where}[{i}]", problems);
                break;
        }
    }
}
