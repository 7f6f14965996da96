namespace AbBench;

/// <summary>
/// A wrk scenario of one load: GET (or what the script sends) of one path at each connection count, on one shared
/// server per variant warmed up until steady, each count a sub-result with its own interleaved rounds.
/// </summary>
internal sealed class WrkScenario(string name, string summary, string description, string path, string script,
    string[] scriptArgs, int[] connections) : Scenario
{
    public override string Name => name;

    public override string Summary => summary;

    /// <summary>
    /// Whether wrk's latency figures mean something. With pipelining wrk times a batch as one sample, then "corrects"
    /// for coordinated omission with an interval computed per response: the synthetic samples land below the minimum
    /// and the percentiles break (a p99 of 0).
    /// </summary>
    public bool Latency { get; init; } = true;

    /// <summary>Sections the scenario adds to the report once every run is done.</summary>
    public Action<ScenarioResult>? Finish { get; init; }

    public override Task<ScenarioPlan> PlanAsync(BenchContext context)
    {
        var o = context.Options;
        IReadOnlyList<int> counts = o.Connections ?? connections;
        var warmup = o.Warmup(WarmUp.DefaultMostSeconds);
        var target = o.PathOverride ?? path;
        context.CheckLoadFdLimit(counts.Max());

        var result = new ScenarioResult(name, description, o.Variants);
        result.Notes.Add(WarmUp.Note("wrk", warmup));
        result.Notes.Add($"{o.Rounds} round(s) per connection count, variants interleaved; each run: {WarmUp.PerRunSeconds} s warm-up with its own load (not recorded), then {o.DurationSeconds} s measured; peak RSS is the server's VmHWM so far");
        result.Notes.Add($"wrk threads: {o.LoadThreads}; connection counts: {string.Join(", ", counts)}");
        if (!Latency)
        {
            result.Notes.Add("No latency figures: with pipelining wrk records one latency sample per batch and its coordinated-omission correction then corrupts the percentiles");
        }
        Metric[] metrics = Latency
            ? Wrk.Metrics
            : [Metric.Rps, Metric.CpuPerRequest, Metric.PeakRss];
        context.AddServerCommands(result, result.Variants, []);
        foreach (var c in counts)
        {
            var load = new WrkLoad(target, script, scriptArgs, c);
            result.Commands.Add(Wrk.DisplayCommand(context, load, WarmUp.PerRunSeconds) + "   # warm-up of each run");
            result.Commands.Add(Wrk.DisplayCommand(context, load, o.DurationSeconds) + "   # measured");
        }

        var warmLoad = new WrkLoad(target, script, scriptArgs, counts.Contains(256) ? 256 : counts[0]);
        return Task.FromResult(new ScenarioPlan
        {
            Result = result,
            Servers = [.. o.Variants.Select(v => ServerSpec.Sample(context, v, []))],
            WarmUp = new WarmUpPlan(warmup, $"at {warmLoad.Connections} connections", WarmUp.WrkWindow(context, warmLoad)),
            Cases = [.. counts.Select(c => new CasePlan(new CaseResult($"{c} connections", $"c={c}", metrics, Wrk.Details),
                (server, variant, round) => Wrk.MeasureAsync(context, server, variant, new WrkLoad(target, script, scriptArgs, c), round)))],
            SecondsPerRun = WarmUp.PerRunSeconds + o.DurationSeconds + 1,
            Finish = Finish is { } finish ? () => finish(result) : null,
        });
    }
}
