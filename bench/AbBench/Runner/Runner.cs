using System.Diagnostics;
using System.Globalization;

namespace AbBench;

/// <summary>A run had errors: the scenario's figures are not reported.</summary>
internal sealed class RefusedException(string message) : BenchException(message);

/// <summary>The scenarios: which load, which connection counts, and how each run is measured.</summary>
internal static class Scenarios
{
    /// <summary>
    /// The most warm-up a server gets. On one core the runtime takes 20–60 s of load to tier its code up (tier 0,
    /// instrumented, optimized), with plateaus on the way that look steady, and req/s about doubles: the warm-up
    /// watches the tiered-compilation threads' CPU time rather than req/s alone.
    /// </summary>
    public const int DefaultWarmupSeconds = 90;
    private const int WarmupWindowSeconds = 5;
    private const int WarmupMinSeconds = 15;
    private const double WarmupSteadyWithin = 0.03;
    public const int RunWarmupSeconds = 3;
    private const int IdleWarmupSeconds = 2;
    private const int IdleWarmupConnections = 64;
    private static readonly TimeSpan IdleQuietBefore = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan IdleSettle = TimeSpan.FromSeconds(3);
    private static readonly string[] Http2Args = ["--Kestrel:EndpointDefaults:Protocols", "Http2"];
    private static readonly string[] WrkDetails = ["requests", "errors connect/read/write/timeout", "status >= 400"];

    public static bool NeedsWrk(string scenario) => scenario != "h2";

    public static bool NeedsH2Load(string scenario) => scenario == "h2";

    public static Task<ScenarioResult> RunAsync(BenchContext context, string scenario) => scenario switch
    {
        "plaintext" => RunWrkAsync(context, scenario, "GET /plaintext, HTTP/1.1 keep-alive (wrk)",
            "/plaintext", "report.lua", [], [64, 256]),
        "json" => RunWrkAsync(context, scenario, "GET /json, HTTP/1.1 keep-alive (wrk)",
            "/json", "report.lua", [], [64, 256]),
        "pipelined" => RunWrkAsync(context, scenario, "GET /plaintext, HTTP/1.1 pipelining depth 16 (wrk)",
            "/plaintext", "pipeline.lua", ["16"], [256], latency: false),
        "connections" => RunWrkAsync(context, scenario, "GET /plaintext at rising connection counts (wrk)",
            "/plaintext", "report.lua", [], [64, 256, 1024, 8192], AddScaling),
        "upload" => RunWrkAsync(context, scenario, "POST of a 1 MiB body to /echo, streamed back (wrk)",
            "/echo", "upload.lua", [], [64]),
        "idle" => RunIdleAsync(context),
        "h2" => RunH2Async(context),
        "static" => StaticScenario.RunAsync(context),
        "disk" => DiskScenario.RunAsync(context),
        "soak" => SoakScenario.RunAsync(context),
        _ => throw new UsageException($"unknown scenario '{scenario}'."),
    };

    private static async Task<ScenarioResult> RunWrkAsync(BenchContext context, string name, string description, string path,
        string script, string[] scriptArgs, int[] defaultConnections, Action<ScenarioResult>? finish = null, bool latency = true)
    {
        var o = context.Options;
        IReadOnlyList<int> connections = o.Connections ?? defaultConnections;
        var warmup = o.Warmup(DefaultWarmupSeconds);
        path = o.PathOverride ?? path;
        CheckLoadFdLimit(context, connections.Max());

        var result = new ScenarioResult(name, description, o.Variants);
        result.Notes.Add(WarmupNote("wrk", warmup));
        result.Notes.Add($"{o.Rounds} round(s) per connection count, variants interleaved; each run: {RunWarmupSeconds} s warm-up with its own load (not recorded), then {o.DurationSeconds} s measured; peak RSS is the server's VmHWM so far");
        result.Notes.Add($"wrk threads: {o.LoadThreads}; connection counts: {string.Join(", ", connections)}");
        if (!latency)
        {
            // wrk times a pipelined batch as one sample, then "corrects" for coordinated omission with an interval
            // computed per response: the synthetic samples land below the minimum and the percentiles break (p99 0).
            result.Notes.Add("No latency figures: with pipelining wrk records one latency sample per batch and its coordinated-omission correction then corrupts the percentiles");
        }
        Metric[] metrics = latency
            ? [Metric.Rps, Metric.P50, Metric.P99, Metric.CpuPerRequest, Metric.PeakRss]
            : [Metric.Rps, Metric.CpuPerRequest, Metric.PeakRss];
        AddServerCommands(context, result, result.Variants, []);
        foreach (var c in connections)
        {
            var load = new WrkLoad(path, script, scriptArgs, c);
            if (warmup > 0)
            {
                result.Commands.Add(Wrk.DisplayCommand(context, load, RunWarmupSeconds) + "   # warm-up of each run");
            }
            result.Commands.Add(Wrk.DisplayCommand(context, load, o.DurationSeconds) + "   # measured");
        }
        PrintPlan(context, result, connections.Count * o.Rounds * o.Variants.Count, RunWarmupSeconds + o.DurationSeconds + 1 + o.Variants.Count * Math.Min(warmup, 30) / (connections.Count * o.Rounds * o.Variants.Count));

        var refusals = new Refusals(o.KeepGoing);
        // One server per variant for the whole scenario, all pinned to the same CPUs and started before any load: the
        // runtime takes tens of seconds of load on one core to tier its code up, so each is warmed up once until its
        // rate is steady, and each run then gets a short warm-up of its own (new connections, a new count).
        var servers = new List<ServerProcess>();
        try
        {
            foreach (var variant in o.Variants)
            {
                var label = $"{name} {variant.Name} start";
                var server = await Labelled(label, () => ServerProcess.StartAsync(context, variant.ArgList, http2: false, context.Cancellation));
                servers.Add(server);
                result.StartupLines.TryAdd(variant.Name, server.StartupLine ?? "n/a");
            }
            var firstLoad = new WrkLoad(path, script, scriptArgs, connections.Contains(256) ? 256 : connections[0]);
            var warmups = new List<string>();
            for (var i = 0; i < servers.Count; i++)
            {
                var label = $"{name} {o.Variants[i].Name} warm-up";
                var seconds = await Labelled(label, () => WarmUpUntilSteadyAsync(context, servers[i], firstLoad, warmup));
                Console.WriteLine($"  {label}: {seconds} s");
                warmups.Add($"{o.Variants[i].Name} {seconds} s");
            }
            result.Notes.Add($"Warm-up until steady, at {firstLoad.Connections} connections: {string.Join(", ", warmups)}");

            foreach (var c in connections)
            {
                var load = new WrkLoad(path, script, scriptArgs, c);
                var results = new CaseResult($"{c} connections", $"c={c}", metrics, WrkDetails);
                result.Cases.Add(results);
                for (var round = 1; round <= o.Rounds; round++)
                {
                    for (var i = 0; i < servers.Count; i++)
                    {
                        var variant = o.Variants[i];
                        var label = $"{name} {results.Label} round {round}/{o.Rounds} {variant.Name}";
                        var (run, problem) = await Labelled(label, () => RunWrkOnceAsync(context, servers[i], variant, load, round));
                        results.Runs.Add(run);
                        PrintRun(label, results, run, problem);
                        refusals.Check(label, problem);
                    }
                }
            }
        }
        finally
        {
            foreach (var server in servers)
            {
                await server.DisposeAsync();
            }
        }
        refusals.ThrowIfAny();
        finish?.Invoke(result);
        return result;
    }

    /// <summary>How the servers were started and warmed up, for the result's notes.</summary>
    public static string WarmupNote(string loadTool, int warmup) =>
        $"One server process per variant for the whole scenario, all on the server CPUs, started together; each warmed up once with {WarmupWindowSeconds} s {loadTool} windows until the runtime's tiered-compilation threads used no CPU in a window and its req/s is within {WarmupSteadyWithin:P0} of the one before, at least {Math.Min(WarmupMinSeconds, warmup)} s and at most {warmup} s";

    /// <summary>
    /// wrk windows with the scenario's load until the runtime has tiered up: no tiered-compilation thread used CPU
    /// in the window and its req/s is within <see cref="WarmupSteadyWithin"/> of the window before; at least
    /// <see cref="WarmupMinSeconds"/> and at most <paramref name="most"/> seconds. Returns the seconds used.
    /// </summary>
    public static Task<int> WarmUpUntilSteadyAsync(BenchContext context, ServerProcess server, WrkLoad load, int most)
        => WarmUpUntilSteadyAsync(server, most, async window =>
        {
            var w = await Wrk.RunAsync(context, load, server.Port, window, context.Cancellation);
            if (w.Requests == 0)
            {
                throw new BenchException($"the warm-up failed completely: {w.Problem()}");
            }
            return w.RequestsPerSecond;
        });

    /// <summary>The same, with any load: <paramref name="runWindow"/> loads the server for the seconds given and returns its req/s.</summary>
    private static async Task<int> WarmUpUntilSteadyAsync(ServerProcess server, int most, Func<int, Task<double>> runWindow)
    {
        var warmedUp = 0;
        double previous = 0;
        var tiering = server.ReadTieringTicks();
        while (warmedUp < most)
        {
            var window = Math.Min(WarmupWindowSeconds, most - warmedUp);
            var rps = await runWindow(window);
            warmedUp += window;
            var nowTiering = server.ReadTieringTicks();
            var jitBusy = nowTiering.Any(t => !tiering.TryGetValue(t.Key, out var before) || t.Value > before);
            tiering = nowTiering;
            if (warmedUp >= WarmupMinSeconds && !jitBusy && previous > 0 && Math.Abs(rps - previous) <= WarmupSteadyWithin * previous)
            {
                break;
            }
            previous = rps;
        }
        return warmedUp;
    }

    /// <summary>One run on a warmed-up server: a short warm-up with the run's own load, then the measured load.</summary>
    public static async Task<(Run, string?)> RunWrkOnceAsync(BenchContext context, IServer server, Variant variant,
        WrkLoad load, int round)
    {
        var ct = context.Cancellation;
        var w = await Wrk.RunAsync(context, load, server.Port, RunWarmupSeconds, ct);
        if (w.Requests == 0)
        {
            throw new BenchException($"the warm-up failed completely: {w.Problem()}");
        }

        var cpuBefore = server.ReadCpuTicks();
        var r = await Wrk.RunAsync(context, load, server.Port, context.Options.DurationSeconds, ct);
        var cpuAfter = server.ReadCpuTicks();
        var peakRss = server.ReadStatusKiB("VmHWM");

        var cpuUs = (cpuAfter - cpuBefore) * 1e6 / context.ClockTicksPerSecond;
        var run = new Run(variant.Name, round, new Dictionary<string, double>
        {
            [Metric.Rps.Key] = r.RequestsPerSecond,
            [Metric.P50.Key] = r.P50Us,
            [Metric.P99.Key] = r.P99Us,
            [Metric.CpuPerRequest.Key] = r.Requests > 0 ? cpuUs / r.Requests : double.NaN,
            [Metric.PeakRss.Key] = peakRss,
        }, [Fmt.Count(r.Requests), $"{r.ConnectErrors}/{r.ReadErrors}/{r.WriteErrors}/{r.TimeoutErrors}", Fmt.Count(r.StatusErrors)]);
        return (run, r.Problem());
    }

    /// <summary>connections: each variant's median req/s at every count divided by its own at 256.</summary>
    private static void AddScaling(ScenarioResult result)
    {
        var reference = result.Cases.FirstOrDefault(c => c.Label == "c=256");
        if (reference is null)
        {
            result.Notes.Add("No scaling table: 256 connections was not among the counts.");
            return;
        }
        var largest = result.Cases.FirstOrDefault(c => c.Label == "c=8192");
        var table = new Table([.. result.Cases.Select(c => c.Label).Prepend("variant"), "target at 8192"]);
        foreach (var v in result.Variants)
        {
            var at256 = reference.Of(v.Name, Metric.Rps).Median;
            var ratios = result.Cases.Select(c => c.Of(v.Name, Metric.Rps).Median / at256).ToArray();
            var target = largest is null ? "n/a"
                : largest.Of(v.Name, Metric.Rps).Median / at256 >= 0.8 ? "met (≥ 0.80)" : "NOT met (< 0.80)";
            table.Add([v.Name, .. ratios.Select(r => r.ToString("0.00", CultureInfo.InvariantCulture)), target]);
        }
        result.Extra.Add(new Section("Scaling: median req/s ÷ the same variant's median req/s at 256 connections", table,
            ["Target: at 8192 connections, at least 0.8 × the rate at 256 connections."]));
    }

    private static async Task<ScenarioResult> RunIdleAsync(BenchContext context)
    {
        var o = context.Options;
        var count = o.IdleConnections;
        var warmup = o.Warmup(IdleWarmupSeconds);
        var ownLimit = FdLimits.Read().Soft;
        if (ownLimit < count + 100)
        {
            throw new BenchException($"the harness may open {ownLimit} files, too few for --idle-connections {count} (needs {count + 100}). Raise the hard limit (ulimit -Hn) or lower --idle-connections.");
        }
        CheckLoadFdLimit(context, IdleWarmupConnections);

        var result = new ScenarioResult("idle", $"server RSS per idle keep-alive HTTP/1.1 connection, {count} connections", o.Variants);
        result.Notes.Add($"{o.Rounds} round(s); per run: a fresh server process, {warmup} s wrk warm-up at {IdleWarmupConnections} connections, {IdleQuietBefore.TotalSeconds:0} s pause, VmRSS, then the harness opens {count} connections (256 at a time), sends one GET /plaintext on each and reads the whole response, keeps them open {IdleSettle.TotalSeconds:0} s, reads VmRSS again and resets them (RST)");
        result.Notes.Add("KiB/conn = (VmRSS with the connections − VmRSS before) / connections");
        AddServerCommands(context, result, result.Variants, []);
        var warmLoad = new WrkLoad("/plaintext", "report.lua", [], IdleWarmupConnections);
        if (warmup > 0)
        {
            result.Commands.Add(Wrk.DisplayCommand(context, warmLoad, warmup) + "   # warm-up");
        }
        result.Commands.Add($"# then the harness itself holds {count} idle keep-alive connections");
        PrintPlan(context, result, o.Rounds * o.Variants.Count, warmup + 8);

        var results = new CaseResult($"{count} idle connections", $"n={count}",
            [Metric.KiBPerConnection, Metric.RssBefore, Metric.RssAfter], ["open time"]);
        result.Cases.Add(results);
        var ct = context.Cancellation;
        for (var round = 1; round <= o.Rounds; round++)
        {
            foreach (var variant in o.Variants)
            {
                var label = $"idle round {round}/{o.Rounds} {variant.Name}";
                var (run, _) = await Labelled<(Run, string?)>(label, async () =>
                {
                    await using var server = await ServerProcess.StartAsync(context, variant.ArgList, http2: false, ct);
                    if (warmup > 0)
                    {
                        var w = await Wrk.RunAsync(context, warmLoad, server.Port, warmup, ct);
                        if (w.Requests == 0)
                        {
                            throw new BenchException($"the warm-up failed completely: {w.Problem()}");
                        }
                    }
                    await Task.Delay(IdleQuietBefore, ct);
                    var before = server.ReadStatusKiB("VmRSS");
                    var opening = Stopwatch.StartNew();
                    long after;
                    TimeSpan openTime;
                    using (var idle = await IdleClient.OpenAsync(server.Port, count, ct))
                    {
                        openTime = opening.Elapsed;
                        await Task.Delay(IdleSettle, ct);
                        after = server.ReadStatusKiB("VmRSS");
                    }
                    result.StartupLines.TryAdd(variant.Name, server.StartupLine ?? "n/a");
                    await server.StopAsync();
                    return (new Run(variant.Name, round, new Dictionary<string, double>
                    {
                        [Metric.KiBPerConnection.Key] = (after - before) / (double)count,
                        [Metric.RssBefore.Key] = before,
                        [Metric.RssAfter.Key] = after,
                    }, [$"{openTime.TotalSeconds:0.00} s"]), null);
                });
                results.Runs.Add(run);
                PrintRun(label, results, run, null);
            }
        }
        return result;
    }

    private static async Task<ScenarioResult> RunH2Async(BenchContext context)
    {
        var o = context.Options;
        IReadOnlyList<int> connections = o.Connections ?? [64];
        var warmup = o.Warmup(DefaultWarmupSeconds);
        var path = o.PathOverride ?? "/plaintext";
        CheckLoadFdLimit(context, connections.Max());

        var result = new ScenarioResult("h2", $"HTTP/2 cleartext GET {path}, {H2Load.StreamsPerConnection} streams per connection (h2load)", o.Variants);
        result.Notes.Add(WarmupNote("h2load", warmup));
        result.Notes.Add($"{o.Rounds} round(s) per connection count, variants interleaved; each run: h2load's own warm-up {RunWarmupSeconds} s (new connections), then its main duration {o.DurationSeconds} s; server CPU is sampled when h2load says the main duration starts and ends; peak RSS is the server's VmHWM so far");
        result.Notes.Add("Latency is h2load's mean time for request: h2load gives no percentiles, so there is no p99");
        AddServerCommands(context, result, result.Variants, Http2Args);
        foreach (var c in connections)
        {
            result.Commands.Add(H2Load.DisplayCommand(context, path, c, o.DurationSeconds, RunWarmupSeconds) + "   # each run");
        }
        PrintPlan(context, result, connections.Count * o.Rounds * o.Variants.Count, RunWarmupSeconds + o.DurationSeconds + 2);

        var refusals = new Refusals(o.KeepGoing);
        var ct = context.Cancellation;
        // As for wrk: one server per variant, tiered up once, rather than a fresh process per run, which measured
        // the JIT (the tiered-compilation threads were still busy after h2load's 30 s warm-up).
        var servers = new List<ServerProcess>();
        try
        {
            foreach (var variant in o.Variants)
            {
                var server = await Labelled($"h2 {variant.Name} start",
                    () => ServerProcess.StartAsync(context, [.. variant.ArgList, .. Http2Args], http2: true, ct));
                servers.Add(server);
                result.StartupLines.TryAdd(variant.Name, server.StartupLine ?? "n/a");
            }
            var warmupConnections = connections.Contains(64) ? 64 : connections[0];
            var warmups = new List<string>();
            for (var i = 0; i < servers.Count; i++)
            {
                var server = servers[i];
                var label = $"h2 {o.Variants[i].Name} warm-up";
                var seconds = await Labelled(label, () => WarmUpUntilSteadyAsync(server, warmup, async window =>
                {
                    var r = await H2Load.RunAsync(context, path, server.Port, warmupConnections, window, 0, () => { }, () => { }, ct);
                    if (r.Succeeded == 0)
                    {
                        throw new BenchException($"the warm-up failed completely: {r.Problem()}");
                    }
                    return r.RequestsPerSecond;
                }));
                Console.WriteLine($"  {label}: {seconds} s");
                warmups.Add($"{o.Variants[i].Name} {seconds} s");
            }
            result.Notes.Add($"Warm-up until steady, at {warmupConnections} connections: {string.Join(", ", warmups)}");

            foreach (var c in connections)
            {
                var results = new CaseResult($"{c} connections × {H2Load.StreamsPerConnection} streams", $"c={c}",
                    [Metric.Rps, Metric.MeanLatency, Metric.CpuPerRequest, Metric.PeakRss],
                    ["requests", "failed/errored/timeout", "non-2xx", "latency sd"]);
                result.Cases.Add(results);
                for (var round = 1; round <= o.Rounds; round++)
                {
                    for (var i = 0; i < servers.Count; i++)
                    {
                        var server = servers[i];
                        var variant = o.Variants[i];
                        var label = $"h2 {results.Label} round {round}/{o.Rounds} {variant.Name}";
                        var (run, problem) = await Labelled(label, () => RunH2OnceAsync(context, server, variant, path, c, round, label));
                        results.Runs.Add(run);
                        PrintRun(label, results, run, problem);
                        refusals.Check(label, problem);
                    }
                }
            }
        }
        finally
        {
            foreach (var server in servers)
            {
                await server.DisposeAsync();
            }
        }
        refusals.ThrowIfAny();
        return result;
    }

    private static async Task<(Run, string?)> RunH2OnceAsync(BenchContext context, ServerProcess server, Variant variant,
        string path, int connections, int round, string label)
    {
        var cpuStart = server.ReadCpuTicks();
        var cpuEnd = -1L;
        var startSeen = false;
        var r = await H2Load.RunAsync(context, path, server.Port, connections, context.Options.DurationSeconds, RunWarmupSeconds,
            onMainStart: () =>
            {
                Volatile.Write(ref cpuStart, server.ReadCpuTicks());
                Volatile.Write(ref startSeen, true);
            },
            onMainEnd: () => Volatile.Write(ref cpuEnd, server.ReadCpuTicks()),
            context.Cancellation);
        if (Volatile.Read(ref cpuEnd) < 0)
        {
            cpuEnd = server.ReadCpuTicks();
        }
        if (!Volatile.Read(ref startSeen))
        {
            Console.Error.WriteLine($"warning: {label}: h2load did not say when its main duration started; CPU µs/req includes the warm-up.");
        }
        var peakRss = server.ReadStatusKiB("VmHWM");

        var cpuUs = (Volatile.Read(ref cpuEnd) - Volatile.Read(ref cpuStart)) * 1e6 / context.ClockTicksPerSecond;
        var run = new Run(variant.Name, round, new Dictionary<string, double>
        {
            [Metric.Rps.Key] = r.RequestsPerSecond,
            [Metric.MeanLatency.Key] = r.MeanUs,
            [Metric.CpuPerRequest.Key] = r.Done > 0 ? cpuUs / r.Done : double.NaN,
            [Metric.PeakRss.Key] = peakRss,
        }, [Fmt.Count(r.Done), $"{r.Failed}/{r.Errored}/{r.TimedOut}", Fmt.Count(r.Non2xx), Fmt.Latency(r.SdUs)]);
        return (run, r.Problem());
    }

    /// <summary>Runs one measured run; a failure names the run it happened in.</summary>
    public static async Task<T> Labelled<T>(string label, Func<Task<T>> run)
    {
        try
        {
            return await run();
        }
        catch (BenchException e) when (e is not RefusedException)
        {
            throw new BenchException($"{label}: {e.Message}", e.ExitCode);
        }
    }

    public static void AddServerCommands(BenchContext context, ScenarioResult result, IEnumerable<Variant> variants, string[] extraArgs)
    {
        foreach (var v in variants)
        {
            result.Commands.Add(ServerProcess.DisplayCommand(context, [.. v.ArgList, .. extraArgs]) + $"   # {v.Name}");
        }
    }

    public static void CheckLoadFdLimit(BenchContext context, int connections)
    {
        var limits = FdLimits.Read();
        if (context.LoadNoFileLimit < connections + 100 || limits.Soft < connections + 200)
        {
            throw new BenchException(
                $"{connections} connections need about {connections + 200} open files, but the hard limit is {limits.Hard} (and the load generator gets {context.LoadNoFileLimit}). Raise it (ulimit -Hn, /etc/security/limits.conf) or use fewer --connections.");
        }
    }

    public static void PrintPlan(BenchContext context, ScenarioResult result, int runs, int secondsPerRun)
    {
        var o = context.Options;
        Console.WriteLine();
        Console.WriteLine($"=== {result.Name}: {result.Description}");
        Console.WriteLine($"    variants: {string.Join(", ", result.Variants.Select(v => $"{v.Name} [{v.Args}]"))}; baseline {result.Baseline}");
        Console.WriteLine($"    {runs} runs, about {TimeSpan.FromSeconds(runs * secondsPerRun):h\\:mm\\:ss}; server on CPU {o.ServerCpus}, load on CPU {o.ClientCpus}");
    }

    public static void PrintRun(string label, CaseResult results, Run run, string? problem)
    {
        var figures = string.Join("  ", results.Metrics.Select(m => $"{m.Header} {m.Format(run.Values[m.Key])}"));
        Console.WriteLine($"  {label,-40} {figures}{(problem is null ? "" : $"  <-- {problem}")}");
    }
}

/// <summary>RLIMIT_NOFILE of this process, read from /proc/self/limits.</summary>
internal readonly record struct FdLimits(int Soft, int Hard)
{
    public static FdLimits Read()
    {
        foreach (var line in File.ReadAllLines("/proc/self/limits"))
        {
            if (line.StartsWith("Max open files", StringComparison.Ordinal))
            {
                var fields = line["Max open files".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                return new FdLimits(Parse(fields[0]), Parse(fields[1]));
            }
        }
        return new FdLimits(1024, 1024);
    }

    private static int Parse(string value) =>
        value == "unlimited" ? int.MaxValue : (int)Math.Min(int.MaxValue, long.Parse(value, CultureInfo.InvariantCulture));
}
