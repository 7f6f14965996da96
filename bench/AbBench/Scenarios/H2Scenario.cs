namespace AbBench;

/// <summary>
/// h2: HTTP/2 cleartext GET /plaintext through h2load, 10 streams per connection. As for wrk, one server per variant
/// tiered up once rather than a fresh process per run, which measured the JIT (the tiered-compilation threads were
/// still busy after h2load's 30 s warm-up). The server's CPU time is sampled when h2load says its main duration
/// starts and ends.
/// </summary>
internal sealed class H2Scenario : Scenario
{
    private const int DefaultConnections = 64;
    private static readonly string[] Http2Args = ["--Kestrel:EndpointDefaults:Protocols", "Http2"];

    public override string Name => "h2";

    public override string Summary => $"HTTP/2 cleartext GET /plaintext, {DefaultConnections} connections x {H2Load.StreamsPerConnection} streams (h2load)";

    public override LoadTool Tool => LoadTool.H2Load;

    public override Task<ScenarioPlan> PlanAsync(BenchContext context)
    {
        var o = context.Options;
        IReadOnlyList<int> connections = o.Connections ?? [DefaultConnections];
        var warmup = o.Warmup(WarmUp.DefaultMostSeconds);
        var path = o.PathOverride ?? "/plaintext";
        context.CheckLoadFdLimit(connections.Max());

        var result = new ScenarioResult("h2", $"HTTP/2 cleartext GET {path}, {H2Load.StreamsPerConnection} streams per connection (h2load)", o.Variants);
        result.Notes.Add(WarmUp.Note("h2load", warmup));
        result.Notes.Add($"{o.Rounds} round(s) per connection count, variants interleaved; each run: h2load's own warm-up {WarmUp.PerRunSeconds} s (new connections), then its main duration {o.DurationSeconds} s; server CPU is sampled when h2load says the main duration starts and ends; peak RSS is the server's VmHWM so far");
        result.Notes.Add("Latency is h2load's mean time for request: h2load gives no percentiles, so there is no p99");
        context.AddServerCommands(result, result.Variants, Http2Args);
        foreach (var c in connections)
        {
            result.Commands.Add(H2Load.DisplayCommand(context, path, https: false, c, o.DurationSeconds, WarmUp.PerRunSeconds) + "   # each run");
        }

        var warmupConnections = connections.Contains(DefaultConnections) ? DefaultConnections : connections[0];
        return Task.FromResult(new ScenarioPlan
        {
            Result = result,
            Servers = [.. o.Variants.Select(v => ServerSpec.Sample(context, v, Http2Args, http2: true))],
            WarmUp = new WarmUpPlan(warmup, $"at {warmupConnections} connections", WarmUp.H2LoadWindow(context, path, https: false, warmupConnections)),
            Cases = [.. connections.Select(c => new CasePlan(
                new CaseResult($"{c} connections × {H2Load.StreamsPerConnection} streams", $"c={c}", H2Load.Metrics, H2Load.Details(https: false)),
                (server, variant, round) => H2Load.MeasureAsync(context, server, variant, path, https: false, c, round)))],
            SecondsPerRun = WarmUp.PerRunSeconds + o.DurationSeconds + 2,
        });
    }
}
