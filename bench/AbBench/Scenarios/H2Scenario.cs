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
            result.Commands.Add(H2Load.DisplayCommand(context, path, c, o.DurationSeconds, WarmUp.PerRunSeconds) + "   # each run");
        }

        var warmupConnections = connections.Contains(DefaultConnections) ? DefaultConnections : connections[0];
        return Task.FromResult(new ScenarioPlan
        {
            Result = result,
            Servers = [.. o.Variants.Select(v => ServerSpec.Sample(context, v, Http2Args, http2: true))],
            WarmUp = new WarmUpPlan(warmup, $"at {warmupConnections} connections", async (server, seconds) =>
            {
                var r = await H2Load.RunAsync(context, path, server.Port, warmupConnections, seconds, 0, () => { }, () => { }, context.Cancellation);
                return r.Succeeded > 0 ? r.RequestsPerSecond : throw new BenchException($"the warm-up failed completely: {r.Problem()}");
            }),
            Cases = [.. connections.Select(c => new CasePlan(
                new CaseResult($"{c} connections × {H2Load.StreamsPerConnection} streams", $"c={c}",
                    [Metric.Rps, Metric.MeanLatency, Metric.CpuPerRequest, Metric.PeakRss],
                    ["requests", "failed/errored/timeout", "non-2xx", "latency sd"]),
                (server, variant, round) => RunOnceAsync(context, server, variant, path, c, round)))],
            SecondsPerRun = WarmUp.PerRunSeconds + o.DurationSeconds + 2,
        });
    }

    private static async Task<RunOutcome> RunOnceAsync(BenchContext context, IServer server, Variant variant, string path, int connections, int round)
    {
        var cpuStart = server.ReadCpuTicks();
        var cpuEnd = -1L;
        var startSeen = false;
        var r = await H2Load.RunAsync(context, path, server.Port, connections, context.Options.DurationSeconds, WarmUp.PerRunSeconds,
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
            context.Progress.WriteLine($"warning: h2 {variant.Name} round {round}: h2load did not say when its main duration started; CPU µs/req includes the warm-up.");
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
        return new RunOutcome(run, r.Problem());
    }
}
