using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Spectre.Console;

namespace Kiln.Cli.Infrastructure;

/// <summary>
/// Everything a command writes goes through here: JSON or Spectre tables on stdout, progress spinners only on an
/// interactive terminal (never when piped or with --json), notes on stderr.
/// </summary>
internal sealed class Output
{
    private static readonly CliJsonContext Compact = new(new JsonSerializerOptions(CliJsonContext.Default.Options) { WriteIndented = false });

    public Output(bool json)
    {
        Json = json;
        Interactive = !json && !Console.IsOutputRedirected && !Console.IsErrorRedirected
            && AnsiConsole.Profile.Capabilities.Interactive;
        if (Console.IsOutputRedirected)
            // Piped tables are read by tools and tests; Spectre's 80-column default would wrap or crop them, and a
            // table only takes the width its cells need, so a wide limit costs nothing.
            AnsiConsole.Profile.Width = 4096;
    }

    public bool Json { get; }

    public bool Interactive { get; }

    public static void WriteJson<T>(T value, JsonTypeInfo<T> typeInfo)
    {
        Console.Out.WriteLine(JsonSerializer.Serialize(value, typeInfo));
        Console.Out.Flush();
    }

    public static void WriteJsonLine(LogLineJson line)
    {
        Console.Out.WriteLine(JsonSerializer.Serialize(line, Compact.LogLineJson));
        Console.Out.Flush();
    }

    public static void Write(Spectre.Console.Rendering.IRenderable renderable) => AnsiConsole.Write(renderable);

    public static void WriteLine(string text) => Console.Out.WriteLine(text);

    /// <summary>The width of a section heading when piped: a terminal's, not the 4096 columns tables may use.</summary>
    public const int PipedRuleWidth = 80;

    /// <summary>
    /// A section heading ("── Block pool ─────…"). On a terminal it is Spectre's rule across the window; piped, a rule
    /// would fill the profile's 4096 columns (set wide for tables), so it is written as plain text 80 columns wide.
    /// </summary>
    public static void Section(string title)
    {
        if (Console.IsOutputRedirected)
            Console.Out.WriteLine(PipedRule(title));
        else
            AnsiConsole.Write(new Rule(Markup.Escape(title)) { Justification = Justify.Left });
    }

    /// <summary>The piped form of <see cref="Section"/>: two rule characters, the title, rule characters to 80 columns.</summary>
    internal static string PipedRule(string title)
    {
        var head = $"── {title} ";
        return head + new string('─', Math.Max(2, PipedRuleWidth - head.Length));
    }

    /// <summary>
    /// One line of prose with Spectre markup. On a terminal it is coloured; piped, the markup is removed and the line
    /// is written whole, because Spectre would break it at the profile width and split phrases a reader greps for.
    /// </summary>
    public static void MarkupLine(string markup)
    {
        if (Console.IsOutputRedirected)
            Console.Out.WriteLine(Markup.Remove(markup));
        else
            AnsiConsole.MarkupLine(markup);
    }

    /// <summary>A remark for a person (stderr), so stdout stays parseable.</summary>
    public void Note(string text)
    {
        if (!Json)
            Console.Error.WriteLine(text);
    }

    public async Task<T> ProgressAsync<T>(string status, Func<Task<T>> work)
    {
        if (!Interactive)
            return await work();
        return await AnsiConsole.Status().Spinner(Spinner.Known.Dots).StartAsync(status, _ => work());
    }

    public Task ProgressAsync(string status, Func<Task> work) =>
        ProgressAsync(status, async () =>
        {
            await work();
            return true;
        });

    public static Table NewTable(params string[] headers)
    {
        var table = new Table().Border(TableBorder.Simple);
        foreach (var header in headers)
            table.AddColumn(new TableColumn(Markup.Escape(header)).NoWrap());
        return table;
    }

    public static string Uptime(double? seconds)
    {
        if (seconds is not { } s)
            return "-";
        var span = TimeSpan.FromSeconds(Math.Floor(s));
        return span.TotalDays >= 1 ? $"{(int)span.TotalDays}d{span.Hours}h"
            : span.TotalHours >= 1 ? $"{span.Hours}h{span.Minutes:00}m"
            : span.TotalMinutes >= 1 ? $"{span.Minutes}m{span.Seconds:00}s"
            : $"{span.Seconds}s";
    }
}
