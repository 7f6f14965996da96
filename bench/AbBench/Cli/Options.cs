using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace AbBench;

/// <summary>A server variant: a name and the arguments it passes to samples/WebApp.</summary>
internal sealed record Variant(string Name, string Args)
{
    public IReadOnlyList<string> ArgList { get; } = CommandLine.Split(Args);
}

/// <summary>A command line the harness cannot run with; the message is meant for the user.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>The harness's command line, parsed by hand.</summary>
internal sealed partial class Options
{
    public const string Usage = """
        Usage: dotnet run -c Release --project bench/AbBench -- <scenario> [options]

        Interleaved A/B(/C) benchmark of samples/WebApp server variants under the same load. Each run starts
        a fresh server process pinned to the server CPUs, waits until GET /plaintext answers, runs a warm-up
        load, then the measured load, and stops the server. Prints medians and per-round ratios vs the
        baseline (the first variant) and, unless --no-save, writes Markdown + SVG to the results folder.

        Scenarios:
          plaintext     GET /plaintext at 64 and 256 connections (wrk)
          json          GET /json at 64 and 256 connections (wrk)
          pipelined     GET /plaintext, HTTP/1.1 pipelining depth 16, 256 connections (wrk)
          connections   GET /plaintext at 64, 256, 1024 and 8192 connections, plus scaling vs 256 (wrk)
          upload        POST of a 1 MiB body to /echo, 64 connections (wrk)
          idle          server RSS per idle keep-alive connection (the harness holds the connections)
          h2            HTTP/2 cleartext GET /plaintext, 64 connections x 10 streams (h2load)
          static        static files of 1 KiB, 64 KiB and 1 MiB, 64 connections (wrk): stock UseStaticFiles
                        on Sockets vs UseAmpedStaticFiles on epoll, with nginx as a reference
          disk          the Flash paper's disk-bound test: a cached hot file and random files from a cold
                        set on a throttled disk, at once (two wrk); then the same fully cached. Needs root
                        (a cgroup v1 blkio throttle); not part of all
          soak          --soak-minutes of steady mixed load per variant, one server at a time (keep-alive
                        GET /plaintext, Connection: close GET /css/site.css, POST /echo; three wrk): RSS,
                        peak RSS, fd count, threads and CPU % each minute, and whether RSS and fds stay flat.
                        Not part of all
          all           every scenario above except disk and soak, in turn

        Options:
          --rounds N             Rounds of A B C ... (default 3; use at least 3 for figures you report).
          --duration S           Measured load per run, in seconds (default 10).
          --warmup S             Most warm-up load per server, in seconds (default 90; h2: 30, fixed;
                                 idle: 2, fixed; 0 = none). wrk scenarios warm each server up once in 5 s
                                 windows, at least 40 s, until one is within 3% of the one before (the
                                 JIT has tiered up); each run then has its own 3 s warm-up.
          --server-cpus LIST     CPUs of the server, taskset list syntax (default 1).
          --client-cpus LIST     CPUs of wrk / h2load, taskset list syntax (default 0).
          --connections N[,N]    Connection counts, replacing the scenario's default (not for idle;
                                 static: for every file size; disk: of each of its two loads).
          --variant NAME=ARGS    A server variant: a name and WebApp arguments, e.g.
                                 --variant "epoll=--transport epoll". Repeatable; replaces the default set
                                 (sockets, epoll, epoll-inline; static: stock-sockets, amped-epoll-inline;
                                 disk: those and sped-epoll-inline; soak: epoll-inline, epoll). The first
                                 one is the baseline. static and disk add --root <their generated folder>
                                 to each. soak alone takes a single one.
          --app PATH             A prebuilt WebApp.dll; skips the harness's own
                                 `dotnet build samples/WebApp/WebApp.csproj -c Release`.
          --wrk-threads N        Load-generator threads: wrk -t and h2load -t (default 1).
          --idle-connections N   Connections the idle scenario opens (default 10000).
          --cold-files N         Files of 64 KiB in the disk scenario's cold set (default 5000, ~320 MiB).
          --soak-minutes N       Minutes of load per variant in the soak scenario (default 10; its verdict
                                 needs 3 or more: minute 1 is the warm-up).
          --results DIR          Where results go (default bench/results in the repository).
          --no-save              Print only; write no result files.
          --keep-going           Finish every run of a scenario even after a run had errors (it is
                                 refused all the same, with every bad run listed).
          --help, -h             Prints this help.

        Exit codes: 0 done, 1 refused or failed (no result file written), 2 bad usage or a missing tool,
        130 interrupted.

        """;

    public static readonly string[] ScenarioNames = ["plaintext", "json", "pipelined", "connections", "upload", "idle", "h2", "static", "disk", "soak"];

    /// <summary>
    /// What `all` runs: not disk, which needs root, changes the machine (a blkio cgroup, the page cache) and
    /// writes hundreds of MiB, nor soak, which takes 20 minutes and looks for leaks rather than comparing; each
    /// runs only when asked for by name.
    /// </summary>
    public static readonly string[] AllScenarioNames = [.. ScenarioNames.Where(s => s is not ("disk" or "soak"))];

    public static readonly IReadOnlyList<Variant> DefaultVariants =
    [
        new("sockets", "--transport sockets"),
        new("epoll", "--transport epoll"),
        new("epoll-inline", "--transport epoll --inline"),
    ];

    public List<string> Scenarios { get; } = [];

    public int Rounds { get; private set; } = 3;

    public int DurationSeconds { get; private set; } = 10;

    /// <summary>The warm-up the user asked for; null means the scenario's default.</summary>
    public int? WarmupSeconds { get; private set; }

    public string ServerCpus { get; private set; } = "1";

    public string ClientCpus { get; private set; } = "0";

    /// <summary>Connection counts that replace the scenario's defaults; null keeps them.</summary>
    public IReadOnlyList<int>? Connections { get; private set; }

    public IReadOnlyList<Variant> Variants { get; private set; } = DefaultVariants;

    /// <summary>Whether --variant was given: static and disk have default variants of their own.</summary>
    public bool VariantsGiven { get; private set; }

    public string? App { get; private set; }

    public int LoadThreads { get; private set; } = 1;

    public int IdleConnections { get; private set; } = 10000;

    public int ColdFiles { get; private set; } = 5000;

    public int SoakMinutes { get; private set; } = 10;

    public string? ResultsDir { get; private set; }

    public bool NoSave { get; private set; }

    public bool KeepGoing { get; private set; }

    /// <summary>Hidden: the request path of the wrk scenarios, to check that non-2xx answers are refused.</summary>
    public string? PathOverride { get; private set; }

    public bool ShowHelp { get; private set; }

    /// <summary>The arguments exactly as given.</summary>
    public IReadOnlyList<string> RawArgs { get; private set; } = [];

    public static Options Parse(string[] args)
    {
        var o = new Options { RawArgs = args };
        var variants = new List<Variant>();

        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            if (!arg.StartsWith('-'))
            {
                o.AddScenario(arg);
                continue;
            }

            var equals = arg.IndexOf('=', StringComparison.Ordinal);
            var name = equals < 0 ? arg : arg[..equals];
            var inline = equals < 0 ? null : arg[(equals + 1)..];
            switch (name)
            {
                case "--help" or "-h":
                    o.ShowHelp = true;
                    break;
                case "--no-save":
                    NoValue(name, inline);
                    o.NoSave = true;
                    break;
                case "--keep-going":
                    NoValue(name, inline);
                    o.KeepGoing = true;
                    break;
                case "--rounds":
                    o.Rounds = ParseInt(name, Value(args, ref i, name, inline), 1, 1000);
                    break;
                case "--duration":
                    o.DurationSeconds = ParseSeconds(name, Value(args, ref i, name, inline), 1);
                    break;
                case "--warmup":
                    o.WarmupSeconds = ParseSeconds(name, Value(args, ref i, name, inline), 0);
                    break;
                case "--server-cpus":
                    o.ServerCpus = ParseCpuList(name, Value(args, ref i, name, inline));
                    break;
                case "--client-cpus":
                    o.ClientCpus = ParseCpuList(name, Value(args, ref i, name, inline));
                    break;
                case "--connections":
                    o.Connections = ParseIntList(name, Value(args, ref i, name, inline));
                    break;
                case "--variant":
                    variants.Add(ParseVariant(Value(args, ref i, name, inline, valueMayLookLikeFlag: true), variants));
                    break;
                case "--app":
                    o.App = Value(args, ref i, name, inline);
                    break;
                case "--wrk-threads":
                    o.LoadThreads = ParseInt(name, Value(args, ref i, name, inline), 1, 256);
                    break;
                case "--idle-connections":
                    o.IdleConnections = ParseInt(name, Value(args, ref i, name, inline), 1, 1_000_000);
                    break;
                case "--cold-files":
                    o.ColdFiles = ParseInt(name, Value(args, ref i, name, inline), 1, 100_000);
                    break;
                case "--soak-minutes":
                    o.SoakMinutes = ParseInt(name, Value(args, ref i, name, inline), 1, 1440);
                    break;
                case "--results":
                    o.ResultsDir = Value(args, ref i, name, inline);
                    break;
                case "--path":
                    var path = Value(args, ref i, name, inline);
                    o.PathOverride = path.StartsWith('/') ? path : throw new UsageException("--path must start with '/'.");
                    break;
                default:
                    throw new UsageException($"unknown option '{arg}'.");
            }
        }

        if (variants.Count > 0)
        {
            // soak judges each variant on its own; every other scenario compares variants.
            if (variants.Count < 2 && o.Scenarios.Any(s => s != "soak"))
            {
                throw new UsageException("give at least two --variant flags: a baseline and something to compare with it (soak alone takes one).");
            }
            o.Variants = variants;
            o.VariantsGiven = true;
        }
        if (!o.ShowHelp && o.Scenarios.Count == 0)
        {
            throw new UsageException($"name a scenario: {string.Join(", ", ScenarioNames)} or all.");
        }
        if (o.Connections is { } connections && connections.Any(c => c < o.LoadThreads))
        {
            throw new UsageException("every connection count must be at least --wrk-threads.");
        }
        if (CpuSet(o.ServerCpus).Overlaps(CpuSet(o.ClientCpus)))
        {
            Console.Error.WriteLine($"warning: --server-cpus {o.ServerCpus} and --client-cpus {o.ClientCpus} overlap; the load generator will compete with the server.");
        }
        return o;
    }

    /// <summary>The warm-up of a scenario: the user's, or the scenario's default.</summary>
    public int Warmup(int scenarioDefault) => WarmupSeconds ?? scenarioDefault;

    private void AddScenario(string name)
    {
        if (name == "all")
        {
            foreach (var s in AllScenarioNames.Where(s => !Scenarios.Contains(s)))
            {
                Scenarios.Add(s);
            }
        }
        else if (ScenarioNames.Contains(name))
        {
            if (!Scenarios.Contains(name))
            {
                Scenarios.Add(name);
            }
        }
        else
        {
            throw new UsageException($"unknown scenario '{name}'; the scenarios are {string.Join(", ", ScenarioNames)} and all.");
        }
    }

    private static void NoValue(string name, string? inline)
    {
        if (inline is not null)
        {
            throw new UsageException($"{name} takes no value.");
        }
    }

    private static string Value(string[] args, ref int i, string name, string? inline, bool valueMayLookLikeFlag = false)
    {
        if (inline is not null)
        {
            return inline;
        }
        if (i + 1 >= args.Length || (!valueMayLookLikeFlag && args[i + 1].StartsWith("--", StringComparison.Ordinal)))
        {
            throw new UsageException($"{name} needs a value.");
        }
        return args[++i];
    }

    private static int ParseInt(string name, string value, int min, int max) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max
            ? n
            : throw new UsageException($"{name} '{value}' is not a whole number from {min} to {max}.");

    private static int ParseSeconds(string name, string value, int min) =>
        ParseInt(name, value.EndsWith('s') ? value[..^1] : value, min, 86_400);

    private static List<int> ParseIntList(string name, string value) =>
        [.. value.Split(',').Select(v => ParseInt(name, v.Trim(), 1, 1_000_000))];

    private static string ParseCpuList(string name, string value) =>
        CpuListRegex().IsMatch(value) ? value : throw new UsageException($"{name} '{value}' is not a CPU list such as 1 or 0,2-3.");

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

    private static Variant ParseVariant(string value, List<Variant> sofar)
    {
        var equals = value.IndexOf('=', StringComparison.Ordinal);
        if (equals <= 0)
        {
            throw new UsageException($"--variant '{value}' is not NAME=ARGS, e.g. \"epoll=--transport epoll\".");
        }
        var name = value[..equals];
        if (!VariantNameRegex().IsMatch(name))
        {
            throw new UsageException($"--variant name '{name}' may hold only letters, digits, '.', '_' and '-'.");
        }
        if (sofar.Any(v => v.Name == name))
        {
            throw new UsageException($"--variant name '{name}' is given twice.");
        }
        try
        {
            return new Variant(name, value[(equals + 1)..].Trim());
        }
        catch (FormatException e)
        {
            throw new UsageException($"--variant '{value}': {e.Message}");
        }
    }

    [GeneratedRegex(@"^\d+(-\d+)?(,\d+(-\d+)?)*$")]
    private static partial Regex CpuListRegex();

    [GeneratedRegex(@"^[A-Za-z0-9._-]+$")]
    private static partial Regex VariantNameRegex();
}

/// <summary>Splitting and quoting of argument strings, as a POSIX shell would for simple cases.</summary>
internal static class CommandLine
{
    /// <summary>Splits on whitespace; single and double quotes group, backslash escapes the next character.</summary>
    public static IReadOnlyList<string> Split(string text)
    {
        var result = new List<string>();
        var current = new StringBuilder();
        var inWord = false;
        char quote = '\0';
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (quote != '\0')
            {
                if (c == quote)
                {
                    quote = '\0';
                }
                else if (c == '\\' && quote == '"' && i + 1 < text.Length)
                {
                    current.Append(text[++i]);
                }
                else
                {
                    current.Append(c);
                }
            }
            else if (char.IsWhiteSpace(c))
            {
                if (inWord)
                {
                    result.Add(current.ToString());
                    current.Clear();
                    inWord = false;
                }
            }
            else
            {
                inWord = true;
                if (c is '\'' or '"')
                {
                    quote = c;
                }
                else if (c == '\\' && i + 1 < text.Length)
                {
                    current.Append(text[++i]);
                }
                else
                {
                    current.Append(c);
                }
            }
        }
        if (quote != '\0')
        {
            throw new FormatException("unbalanced quote");
        }
        if (inWord)
        {
            result.Add(current.ToString());
        }
        return result;
    }

    /// <summary>Quotes one argument for a POSIX shell, only when it needs it.</summary>
    public static string Quote(string arg) =>
        arg.Length > 0 && arg.All(c => char.IsAsciiLetterOrDigit(c) || "-_./=:,+@%".Contains(c))
            ? arg
            : "'" + arg.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    public static string Join(IEnumerable<string> args) => string.Join(' ', args.Select(Quote));
}
