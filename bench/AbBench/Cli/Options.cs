using System.Globalization;

namespace AbBench;

/// <summary>The harness's settings, as the command line gave them (<see cref="BenchCommand"/> defines and parses it).</summary>
internal sealed class Options
{
    /// <summary>The scenarios to run, in order, each once.</summary>
    public required IReadOnlyList<Scenario> Scenarios { get; init; }

    public int Rounds { get; init; } = 3;

    public int DurationSeconds { get; init; } = 10;

    /// <summary>The warm-up the user asked for; null means the scenario's default.</summary>
    public int? WarmupSeconds { get; init; }

    public string ServerCpus { get; init; } = "1";

    public string ClientCpus { get; init; } = "0";

    /// <summary>Connection counts that replace the scenario's defaults; null keeps them.</summary>
    public IReadOnlyList<int>? Connections { get; init; }

    public IReadOnlyList<Variant> Variants { get; init; } = Variant.Defaults;

    /// <summary>Whether --variant was given: static, disk and soak have default variants of their own.</summary>
    public bool VariantsGiven { get; init; }

    public string? App { get; init; }

    public int LoadThreads { get; init; } = 1;

    public int IdleConnections { get; init; } = 10000;

    public int ColdFiles { get; init; } = 5000;

    public int SoakMinutes { get; init; } = 10;

    public string? ResultsDir { get; init; }

    public bool NoSave { get; init; }

    public bool KeepGoing { get; init; }

    /// <summary>Hidden: the request path of the wrk scenarios, to check that non-2xx answers are refused.</summary>
    public string? PathOverride { get; init; }

    /// <summary>The arguments exactly as given, for the result file.</summary>
    public required IReadOnlyList<string> RawArgs { get; init; }

    /// <summary>The warm-up of a scenario: the user's, or the scenario's default.</summary>
    public int Warmup(int scenarioDefault) => WarmupSeconds ?? scenarioDefault;

    /// <summary>The variants of a scenario with defaults of its own: the user's, if given.</summary>
    public IReadOnlyList<Variant> VariantsOr(IReadOnlyList<Variant> scenarioDefaults) => VariantsGiven ? Variants : scenarioDefaults;

    /// <summary>The CPUs a taskset list names.</summary>
    public static HashSet<int> CpuSet(string list)
    {
        var set = new HashSet<int>();
        foreach (var part in list.Split(','))
        {
            var dash = part.IndexOf('-', StringComparison.Ordinal);
            var first = int.Parse(dash < 0 ? part : part[..dash], CultureInfo.InvariantCulture);
            var last = dash < 0 ? first : int.Parse(part[(dash + 1)..], CultureInfo.InvariantCulture);
            for (var cpu = first; cpu <= last; cpu++)
            {
                set.Add(cpu);
            }
        }
        return set;
    }
}
