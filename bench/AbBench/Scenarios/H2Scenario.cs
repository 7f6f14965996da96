namespace AbBench;

/// <summary>
/// h2: HTTP/2 cleartext GET /plaintext through h2load, 10 streams per connection. As for wrk, one server per variant
/// tiered up once rather than a fresh process per run, which measured the JIT (the tiered-compilation threads were
/// still busy after h2load's 30 s warm-up). The server's CPU time is sampled when h2load says its main duration
/// starts and ends. <see cref="Plan"/> is the machinery of every h2load scenario over cleartext HTTP/2.
/// </summary>
internal sealed class H2Scenario : Scenario
{
    /// <summary>The connection count of every h2load scenario unless --connections says otherwise.</summary>
    public const int DefaultConnections = 64;
    private static readonly string[] Http2Args = ["--Kestrel:EndpointDefaults:Protocols", "Http2"];

    public override string Name => "h2";

    public override string Summary => $"HTTP/2 cleartext GET /plaintext, {DefaultConnections} connections x {H2Load.StreamsPerConnection} streams (h2load)";

    public override LoadTool Tool => LoadTool.H2Load;

    public override Task<ScenarioPlan> PlanAsync(BenchContext context)
    {
        var path = context.Options.PathOverride ?? "/plaintext";
        return Task.FromResult(Plan(context, new H2Workload(Name,
            $"HTTP/2 cleartext GET {path}, {H2Load.StreamsPerConnection} streams per connection (h2load)", new H2LoadRequest(path))));
    }

    /// <summary>
    /// The plan of an h2load scenario: one server per variant with cleartext HTTP/2 only, warmed up until steady with
    /// the workload's requests, then per connection count interleaved rounds of h2load (its own warm-up, then the
    /// measured duration), each run refused on h2load's failures and on the workload's own check.
    /// </summary>
    public static ScenarioPlan Plan(BenchContext context, H2Workload workload)
    {
        var o = context.Options;
        IReadOnlyList<int> connections = o.Connections ?? [DefaultConnections];
        var warmup = o.Warmup(WarmUp.DefaultMostSeconds);
        var request = workload.Request;
        context.CheckLoadFdLimit(connections.Max());

        var result = new ScenarioResult(workload.Name, workload.Description, o.Variants);
        result.Notes.Add(WarmUp.Note("h2load", warmup));
        result.Notes.Add($"{o.Rounds} round(s) per connection count, variants interleaved; each run: h2load's own warm-up {WarmUp.PerRunSeconds} s (new connections), then its main duration {o.DurationSeconds} s; server CPU is sampled when h2load says the main duration starts and ends; peak RSS is the server's VmHWM so far");
        result.Notes.Add("Latency is h2load's mean time for request: h2load gives no percentiles, so there is no p99");
        context.AddServerCommands(result, result.Variants, Http2Args);
        foreach (var c in connections)
        {
            result.Commands.Add(H2Load.DisplayCommand(context, request, c, o.DurationSeconds, WarmUp.PerRunSeconds) + "   # each run");
        }

        var warmupConnections = connections.Contains(DefaultConnections) ? DefaultConnections : connections[0];
        return new ScenarioPlan
        {
            Result = result,
            Servers = [.. o.Variants.Select(v => ServerSpec.Sample(context, v, Http2Args, http2: true))],
            AfterStart = workload.AfterStart,
            WarmUp = new WarmUpPlan(warmup, $"at {warmupConnections} connections", async (server, seconds) =>
            {
                var r = await H2Load.RunAsync(context, request, server.Port, warmupConnections, seconds, 0, () => { }, () => { }, context.Cancellation);
                return r.Succeeded > 0 ? r.RequestsPerSecond : throw new BenchException($"the warm-up failed completely: {r.Problem()}");
            }),
            Cases = [.. connections.Select(c => new CasePlan(
                new CaseResult($"{c} connections × {H2Load.StreamsPerConnection} streams", $"c={c}",
                    [Metric.Rps, Metric.MeanLatency, Metric.CpuPerRequest, Metric.PeakRss],
                    ["requests", "failed/errored/timeout", "non-2xx", "latency sd", .. workload.RunCheck is { } check ? (string[])[check.Column] : []]),
                (server, variant, round) => RunOnceAsync(context, server, variant, workload, c, round)))],
            SecondsPerRun = WarmUp.PerRunSeconds + o.DurationSeconds + 2,
        };
    }

    private static async Task<RunOutcome> RunOnceAsync(BenchContext context, IServer server, Variant variant, H2Workload workload, int connections, int round)
    {
        var afterRun = workload.RunCheck is { } check ? await check.BeforeAsync(server) : null;
        var cpuStart = server.ReadCpuTicks();
        var cpuEnd = -1L;
        var startSeen = false;
        var r = await H2Load.RunAsync(context, workload.Request, server.Port, connections, context.Options.DurationSeconds, WarmUp.PerRunSeconds,
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
            context.Progress.WriteLine($"warning: {workload.Name} {variant.Name} round {round}: h2load did not say when its main duration started; CPU µs/req includes the warm-up.");
        }
        var peakRss = server.ReadStatusKiB("VmHWM");
        (string? Detail, string? Problem) checkedRun = afterRun is null ? (null, null) : await afterRun(r);

        var cpuUs = (Volatile.Read(ref cpuEnd) - Volatile.Read(ref cpuStart)) * 1e6 / context.ClockTicksPerSecond;
        var run = new Run(variant.Name, round, new Dictionary<string, double>
        {
            [Metric.Rps.Key] = r.RequestsPerSecond,
            [Metric.MeanLatency.Key] = r.MeanUs,
            [Metric.CpuPerRequest.Key] = r.Done > 0 ? cpuUs / r.Done : double.NaN,
            [Metric.PeakRss.Key] = peakRss,
        }, [Fmt.Count(r.Done), $"{r.Failed}/{r.Errored}/{r.TimedOut}", Fmt.Count(r.Non2xx), Fmt.Latency(r.SdUs), .. checkedRun.Detail is { } detail ? (string[])[detail] : []]);
        var problem = string.Join("; ", new[] { r.Problem(), checkedRun.Problem }.OfType<string>());
        return new RunOutcome(run, problem.Length > 0 ? problem : null);
    }
}

/// <summary>What an h2load scenario sends, and what it checks beyond h2load's own counts.</summary>
/// <param name="Name">The scenario's name, for the results and the progress.</param>
/// <param name="Description">The scenario's description in the results.</param>
/// <param name="Request">The request h2load sends, in the warm-up and in every run.</param>
internal sealed record H2Workload(string Name, string Description, H2LoadRequest Request)
{
    /// <summary>Called once a server answers, before any load: a content check.</summary>
    public Func<IServer, Variant, Task>? AfterStart { get; init; }

    /// <summary>A check of every measured run that h2load's figures cannot make; null for none.</summary>
    public H2RunCheck? RunCheck { get; init; }
}

/// <summary>
/// A check around each measured run: <see cref="BeforeAsync"/> is called before h2load starts (to read a counter, say),
/// and the function it returns once h2load has exited, with h2load's figures. That gives the run's entry in the
/// <see cref="Column"/> of the raw runs, and what was wrong with the run (a reason to refuse it), or null.
/// </summary>
internal sealed record H2RunCheck(string Column, Func<IServer, Task<Func<H2LoadResult, Task<(string Detail, string? Problem)>>>> BeforeAsync);
