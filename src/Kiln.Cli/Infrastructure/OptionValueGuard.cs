using System.CommandLine;

namespace Kiln.Cli.Infrastructure;

/// <summary>
/// System.CommandLine hands an option that takes a value the next token, whatever it is: <c>run --net --detach</c>
/// made "--detach" the TAP name and ran in the foreground. Every value-taking option in kiln's tree refuses a value
/// that is itself one of kiln's option names or aliases, so such a line is a usage error (exit 2) before anything
/// starts. Values that merely begin with '-' (a negative number, a file named "-x") are left to each option's checks.
/// </summary>
internal static class OptionValueGuard
{
    public static void Install(Command root)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        var options = new HashSet<Option>();
        Collect(root, names, options);
        foreach (var option in options.Where(TakesValue))
        {
            option.Validators.Add(result =>
            {
                foreach (var token in result.Tokens)
                {
                    if (names.Contains(token.Value))
                        result.AddError($"{option.Name} needs a value, but the next word is the option '{token.Value}'.");
                }
            });
        }
    }

    private static bool TakesValue(Option option) =>
        option.Arity.MaximumNumberOfValues > 0 && option.ValueType != typeof(bool);

    private static void Collect(Command command, HashSet<string> names, HashSet<Option> options)
    {
        foreach (var option in command.Options)
        {
            options.Add(option);
            names.Add(option.Name);
            names.UnionWith(option.Aliases);
        }
        foreach (var sub in command.Subcommands)
            Collect(sub, names, options);
    }
}
