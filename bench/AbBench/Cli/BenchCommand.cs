using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Text.RegularExpressions;

namespace AbBench;

/// <summary>
/// The command line, through System.CommandLine: every option with its default and its checks, so that
/// <c>--help</c> is generated from the same definitions the parser uses.
/// </summary>
internal static partial class BenchCommand
{
    private static readonly Argument<string[]> ScenarioNames = new("scenario")
    {
        Description = "The scenarios to run, in turn (see above); all runs every one but disk and soak.",
        Arity = ArgumentArity.ZeroOrMore,
    };

    private static readonly Option<int> Rounds = Whole("--rounds", "Rounds of A B C ... (use at least 3 for figures you report).", 3, 1, 1000);

    private static readonly Option<int> Duration = Whole("--duration", "Measured load per run, in seconds.", 10, 1, 86_400, seconds: true);

    private static readonly Option<int?> Warmup = new("--warmup")
    {
        Description = $"Most warm-up per server, in seconds (default {WarmUp.DefaultMostSeconds}; 0 = none): wrk scenarios, h2, tls, grpc, static, proxy and disk warm each server up once in {WarmUp.WindowSeconds} s windows, at least {WarmUp.MinSeconds} s, until steady; idle: the wrk warm-up of each run (default 2); soak ignores it (minute 1 is its warm-up).",
        CustomParser = r => r.Tokens.Count == 0 ? null : ParseWhole(r, "--warmup", 0, 86_400, seconds: true),
    };

    private static readonly Option<string> ServerCpus = CpuList("--server-cpus", "CPUs of the server, in taskset list syntax (1, 2-3, 0,2).", "1");

    private static readonly Option<string> ClientCpus = CpuList("--client-cpus", "CPUs of wrk / h2load, in taskset list syntax; a warning if they overlap the server's.", "0");

    private static readonly Option<int[]?> Connections = new("--connections")
    {
        Description = "Connection counts N[,N...] that replace the scenario's own (not for idle; static: of every file size; disk: of each of its two loads; tls: of both its cases).",
        CustomParser = r => r.Tokens.Count == 0 ? null
            : [.. r.Tokens.Single().Value.Split(',').Select(v => ParseWhole(r, "--connections", v.Trim(), 1, 1_000_000))],
    };

    private static readonly Option<Variant[]> Variants = new("--variant")
    {
        Description = "A server variant NAME=ARGS: a name (letters, digits, '.', '_', '-') and WebApp arguments, e.g. \"epoll=--transport epoll\". Repeatable, at least two (soak alone: one); replaces the scenario's default set; the first is the baseline. static and disk append --root <their folder>; static still adds nginx.",
        HelpName = "NAME=ARGS",
        CustomParser = ParseVariants,
    };

    private static readonly Option<string?> App = new("--app")
    {
        Description = "A prebuilt WebApp.dll; skips the harness's own `dotnet build samples/WebApp/WebApp.csproj -c Release`.",
        HelpName = "PATH",
    };

    private static readonly Option<int> LoadThreads = Whole("--wrk-threads", "Load-generator threads: wrk -t and h2load -t.", 1, 1, 256);

    private static readonly Option<int> IdleConnections = Whole("--idle-connections", "Connections the idle scenario holds.", 10000, 1, 1_000_000);

    private static readonly Option<int> ColdFiles = Whole("--cold-files", "Files of 64 KiB in the disk scenario's cold set (5000: about 320 MiB).", 5000, 1, 100_000);

    private static readonly Option<int> SoakMinutes = Whole("--soak-minutes", "Minutes of load per variant in soak; its verdict needs at least 3 (minute 1 is the warm-up).", 10, 1, 1440);

    private static readonly Option<string?> Results = new("--results")
    {
        Description = "Where the result files go (default: bench/results in the repository).",
        HelpName = "DIR",
    };

    private static readonly Option<bool> NoSave = new("--no-save") { Description = "Print only; write no result files." };

    private static readonly Option<bool> KeepGoing = new("--keep-going")
    {
        Description = "Finish every run of a scenario even after a run had errors, to see them all; the scenario is refused all the same.",
    };

    private static readonly Option<string?> PathOverride = new("--path")
    {
        Hidden = true,
        CustomParser = r => r.Tokens.Count == 0 ? null
            : r.Tokens.Single().Value is var path && path.StartsWith('/') ? path
            : Error<string?>(r, "--path must start with '/'."),
    };

    /// <summary>The harness's root command: its description lists the scenarios, the options carry their defaults.</summary>
    public static RootCommand Create()
    {
        var scenarios = string.Join('\n', ScenarioRegistry.All.Select(s => $"  {s.Name,-12}  {s.Summary}"));
        var command = new RootCommand($"""
            Interleaved A/B(/C) benchmark of samples/WebApp server variants under the same load: one server per
            variant pinned to the server CPUs, warmed up until steady, then rounds of measured runs with the
            variants in turn. Prints medians and per-round ratios vs the baseline (the first variant) and, unless
            --no-save, writes Markdown + SVG to the results folder.

            Scenarios:
            {scenarios}
              {"all",-12}  every scenario above except {string.Join(" and ", ScenarioRegistry.All.Where(s => !s.InAll).Select(s => s.Name))}, in turn

            Exit codes: 0 done, 1 refused or failed (no result file written), 2 bad usage or a missing tool,
            130 interrupted.
            """);
        command.Arguments.Add(ScenarioNames);
        foreach (Option option in (Option[])[Rounds, Duration, Warmup, ServerCpus, ClientCpus, Connections, Variants, App,
                     LoadThreads, IdleConnections, ColdFiles, SoakMinutes, Results, NoSave, KeepGoing, PathOverride])
        {
            command.Options.Add(option);
        }
        command.Validators.Add(Validate);
        return command;
    }

    /// <summary>The options of a parse without errors.</summary>
    public static Options Bind(ParseResult parsed, IReadOnlyList<string> args)
    {
        var variants = parsed.GetValue(Variants) ?? [];
        var options = new Options
        {
            Scenarios = Scenarios(parsed.GetValue(ScenarioNames) ?? []),
            Rounds = parsed.GetValue(Rounds),
            DurationSeconds = parsed.GetValue(Duration),
            WarmupSeconds = parsed.GetValue(Warmup),
            ServerCpus = parsed.GetValue(ServerCpus)!,
            ClientCpus = parsed.GetValue(ClientCpus)!,
            Connections = parsed.GetValue(Connections) is { Length: > 0 } connections ? connections : null,
            Variants = variants.Length > 0 ? variants : Variant.Defaults,
            VariantsGiven = variants.Length > 0,
            App = parsed.GetValue(App),
            LoadThreads = parsed.GetValue(LoadThreads),
            IdleConnections = parsed.GetValue(IdleConnections),
            ColdFiles = parsed.GetValue(ColdFiles),
            SoakMinutes = parsed.GetValue(SoakMinutes),
            ResultsDir = parsed.GetValue(Results),
            NoSave = parsed.GetValue(NoSave),
            KeepGoing = parsed.GetValue(KeepGoing),
            PathOverride = parsed.GetValue(PathOverride),
            RawArgs = args,
        };
        if (Options.CpuSet(options.ServerCpus).Overlaps(Options.CpuSet(options.ClientCpus)))
        {
            Console.Error.WriteLine($"warning: --server-cpus {options.ServerCpus} and --client-cpus {options.ClientCpus} overlap; the load generator will compete with the server.");
        }
        return options;
    }

    /// <summary>The rules that tie options together, checked with the parse so that they read like its errors.</summary>
    private static void Validate(CommandResult result)
    {
        // An option whose own value is wrong has its error already; GetValue would throw it, and there is nothing to tie.
        T? Value<T>(Option<T> option)
        {
            try
            {
                return result.GetValue(option);
            }
            catch (InvalidOperationException)
            {
                return default;
            }
        }

        var names = result.GetValue(ScenarioNames) ?? [];
        if (names.Length == 0)
        {
            result.AddError($"name a scenario: {string.Join(", ", ScenarioRegistry.All.Select(s => s.Name))} or all.");
        }
        // The scenario argument takes any token that no option claims, so a misspelt option lands here.
        foreach (var name in names.Where(n => n.StartsWith('-')))
        {
            result.AddError($"unknown option '{name}'.");
        }
        foreach (var name in names.Where(n => n != "all" && !n.StartsWith('-') && ScenarioRegistry.Find(n) is null))
        {
            result.AddError($"unknown scenario '{name}'; the scenarios are {string.Join(", ", ScenarioRegistry.All.Select(s => s.Name))} and all.");
        }
        // soak judges each variant on its own; every other scenario compares variants.
        if (Value(Variants) is { Length: 1 } && names.Any(n => n != "soak"))
        {
            result.AddError("give at least two --variant flags: a baseline and something to compare with it (soak alone takes one).");
        }
        if (Value(Connections) is { } connections && connections.Any(c => c < Value(LoadThreads)))
        {
            result.AddError("every connection count must be at least --wrk-threads.");
        }
    }

    /// <summary>The scenarios named, in order and each once; all expands to the scenarios that are part of it.</summary>
    private static List<Scenario> Scenarios(IEnumerable<string> names)
    {
        var scenarios = new List<Scenario>();
        foreach (var name in names)
        {
            foreach (var scenario in name == "all" ? ScenarioRegistry.All.Where(s => s.InAll) : [ScenarioRegistry.Find(name)!])
            {
                if (!scenarios.Contains(scenario))
                {
                    scenarios.Add(scenario);
                }
            }
        }
        return scenarios;
    }

    private static Option<int> Whole(string name, string description, int defaultValue, int min, int max, bool seconds = false) => new(name)
    {
        Description = description,
        DefaultValueFactory = _ => defaultValue,
        CustomParser = r => r.Tokens.Count == 0 ? defaultValue : ParseWhole(r, name, min, max, seconds),
    };

    private static int ParseWhole(ArgumentResult result, string name, int min, int max, bool seconds = false)
    {
        var value = result.Tokens.Single().Value;
        return ParseWhole(result, name, seconds && value.EndsWith('s') ? value[..^1] : value, min, max);
    }

    private static int ParseWhole(ArgumentResult result, string name, string value, int min, int max) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max
            ? n
            : Error<int>(result, $"{name} '{value}' is not a whole number from {min} to {max}.");

    private static Option<string> CpuList(string name, string description, string defaultValue) => new(name)
    {
        Description = description,
        HelpName = "LIST",
        DefaultValueFactory = _ => defaultValue,
        CustomParser = r => r.Tokens.Count == 0 ? defaultValue
            : CpuListRegex().IsMatch(r.Tokens.Single().Value) ? r.Tokens.Single().Value
            : Error<string>(r, $"{name} '{r.Tokens.Single().Value}' is not a CPU list such as 1 or 0,2-3."),
    };

    private static Variant[] ParseVariants(ArgumentResult result)
    {
        var variants = new List<Variant>();
        foreach (var value in result.Tokens.Select(t => t.Value))
        {
            var equals = value.IndexOf('=', StringComparison.Ordinal);
            var name = equals > 0 ? value[..equals] : "";
            string? problem = equals <= 0 ? $"--variant '{value}' is not NAME=ARGS, e.g. \"epoll=--transport epoll\"."
                : !VariantNameRegex().IsMatch(name) ? $"--variant name '{name}' may hold only letters, digits, '.', '_' and '-'."
                : variants.Any(v => v.Name == name) ? $"--variant name '{name}' is given twice."
                : null;
            if (problem is not null)
            {
                return Error<Variant[]>(result, problem);
            }
            try
            {
                variants.Add(new Variant(name, value[(equals + 1)..].Trim()));
            }
            catch (FormatException e)
            {
                return Error<Variant[]>(result, $"--variant '{value}': {e.Message}");
            }
        }
        return [.. variants];
    }

    private static T Error<T>(ArgumentResult result, string message)
    {
        result.AddError(message);
        return default!;
    }

    [GeneratedRegex(@"^\d+(-\d+)?(,\d+(-\d+)?)*$")]
    private static partial Regex CpuListRegex();

    [GeneratedRegex(@"^[A-Za-z0-9._-]+$")]
    private static partial Regex VariantNameRegex();
}
