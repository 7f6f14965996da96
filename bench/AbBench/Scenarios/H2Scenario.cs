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
            $"HTTP/2 cleartext GET {path}, {H2Load.StreamsPerConnection} streams per connection (h2load)", new H2LoadRequest(path))
        {
            Finish = TransportTargets.H2,
        }));
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
            WarmUp = new WarmUpPlan(warmup, $"at {warmupConnections} connections", WarmUp.H2LoadWindow(context, request, warmupConnections)),
            Cases = [.. connections.Select(c => new CasePlan(
                new CaseResult($"{c} connections × {H2Load.StreamsPerConnection} streams", $"c={c}", H2Load.Metrics, H2Load.Details(https: false, workload.RunCheck)),
                (server, variant, round) => H2Load.MeasureAsync(context, server, variant, request, c, round, workload.RunCheck)))],
            SecondsPerRun = WarmUp.PerRunSeconds + o.DurationSeconds + 2,
            Finish = workload.Finish is { } finish ? () => finish(result) : null,
        };
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

    /// <summary>Sections the scenario adds to the report once every run is done (its targets).</summary>
    public Action<ScenarioResult>? Finish { get; init; }
}

/// <summary>
/// A check around each measured run: <see cref="BeforeAsync"/> is called before h2load starts (to read a counter, say),
/// and the function it returns once h2load has exited, with h2load's figures. That gives the run's entry in the
/// <see cref="Column"/> of the raw runs, and what was wrong with the run (a reason to refuse it), or null.
/// </summary>
internal sealed record H2RunCheck(string Column, Func<IServer, Task<Func<H2LoadResult, Task<(string Detail, string? Problem)>>>> BeforeAsync);
