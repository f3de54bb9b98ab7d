// `kiln metadata`: the MMDS document of a running sandbox (run --network … --metadata), read, replaced or merged.
using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Kiln.Cli.Infrastructure;

namespace Kiln.Cli.Commands;

internal static class MetadataCommand
{
    public static Command Create(GlobalOptions globals)
    {
        var name = CommandExtensions.NameArgument();
        var put = new Option<string?>("--put") { Description = "A JSON file whose object replaces the document." };
        var patch = new Option<string?>("--patch") { Description = "A JSON file whose object is merged into the document (RFC 7396: null removes a key)." };
        var command = new Command("metadata", "Print the metadata document (MMDS) the guest reads, after replacing (--put) or merging (--patch) it.") { name, put, patch };
        return command.WithAction(globals, async (context, cancellationToken) =>
        {
            if (context.Value(put) is not null && context.Value(patch) is not null)
                throw new UsageException("--put and --patch contradict each other: replace or merge, not both.");
            var putDocument = context.Value(put) is { } putPath ? Read("--put", putPath) : null;
            var patchDocument = context.Value(patch) is { } patchPath ? Read("--patch", patchPath) : null;
            await using var hypervisor = await Sandboxes.OpenAsync(context, context.Value(name), cancellationToken);
            var document = putDocument is not null ? await hypervisor.PutMetadataAsync(putDocument, cancellationToken)
                : patchDocument is not null ? await hypervisor.PatchMetadataAsync(patchDocument, cancellationToken)
                : await hypervisor.GetMetadataAsync(cancellationToken);
            // The document is JSON already: printed as it is, with or without --json.
            Output.WriteLine(document.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            return ExitCodes.Success;
        });
    }

    private static JsonObject Read(string option, string path)
    {
        var full = Specs.RequireFile(path, option);
        try
        {
            return JsonNode.Parse(File.ReadAllText(full)) as JsonObject
                ?? throw new UsageException($"{option}: {full} does not hold a JSON object.");
        }
        catch (JsonException e)
        {
            throw new UsageException($"{option}: {full} is not valid JSON: {e.Message}");
        }
    }
}
