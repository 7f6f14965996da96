using System.Diagnostics;

namespace AbBench;

/// <summary>
/// idle: the server's memory per idle keep-alive connection. Each run has a fresh server, so that the RSS before and
/// after is the run's alone: a short wrk warm-up, a pause, VmRSS; then the harness itself opens the connections,
/// sends one GET /plaintext on each, keeps them open, and reads VmRSS again.
/// </summary>
internal sealed class IdleScenario : Scenario
{
    private const int DefaultWarmupSeconds = 2;
    private const int WarmupConnections = 64;
    private static readonly TimeSpan QuietBefore = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan Settle = TimeSpan.FromSeconds(3);

    public override string Name => "idle";

    public override string Summary => "server RSS per idle keep-alive connection (the harness holds the connections)";

    public override Task<ScenarioPlan> PlanAsync(BenchContext context)
    {
        var o = context.Options;
        var count = o.IdleConnections;
        var warmup = o.Warmup(DefaultWarmupSeconds);
        var ownLimit = FdLimits.Read().Soft;
        if (ownLimit < count + 100)
        {
            throw new BenchException($"the harness may open {ownLimit} files, too few for --idle-connections {count} (needs {count + 100}). Raise the hard limit (ulimit -Hn) or lower --idle-connections.");
        }
        context.CheckLoadFdLimit(WarmupConnections);

        var result = new ScenarioResult("idle", $"server RSS per idle keep-alive HTTP/1.1 connection, {count} connections", o.Variants);
        result.Notes.Add($"{o.Rounds} round(s); per run: a fresh server process, {warmup} s wrk warm-up at {WarmupConnections} connections, {QuietBefore.TotalSeconds:0} s pause, VmRSS, then the harness opens {count} connections (256 at a time), sends one GET /plaintext on each and reads the whole response, keeps them open {Settle.TotalSeconds:0} s, reads VmRSS again and resets them (RST)");
        result.Notes.Add("KiB/conn = (VmRSS with the connections − VmRSS before) / connections");
        context.AddServerCommands(result, result.Variants, []);
        var warmLoad = new WrkLoad("/plaintext", "report.lua", [], WarmupConnections);
        if (warmup > 0)
        {
            result.Commands.Add(Wrk.DisplayCommand(context, warmLoad, warmup) + "   # warm-up");
        }
        result.Commands.Add($"# then the harness itself holds {count} idle keep-alive connections");

        var ct = context.Cancellation;
        async Task<RunOutcome> RunOnceAsync(IServer server, Variant variant, int round)
        {
            if (warmup > 0)
            {
                await WarmUp.WrkWindow(context, warmLoad)(server, warmup);
            }
            await Task.Delay(QuietBefore, ct);
            var before = server.ReadStatusKiB("VmRSS");
            var opening = Stopwatch.StartNew();
            long after;
            TimeSpan openTime;
            using (var idle = await IdleClient.OpenAsync(server.Port, count, ct))
            {
                openTime = opening.Elapsed;
                await Task.Delay(Settle, ct);
                after = server.ReadStatusKiB("VmRSS");
            }
            return new RunOutcome(new Run(variant.Name, round, new Dictionary<string, double>
            {
                [Metric.KiBPerConnection.Key] = (after - before) / (double)count,
                [Metric.RssBefore.Key] = before,
                [Metric.RssAfter.Key] = after,
            }, [$"{openTime.TotalSeconds:0.00} s"]), null);
        }

        return Task.FromResult(new ScenarioPlan
        {
            Result = result,
            Servers = [.. o.Variants.Select(v => ServerSpec.Sample(context, v, []))],
            Lifetime = ServerLifetime.PerRun,
            Cases = [new CasePlan(new CaseResult($"{count} idle connections", $"n={count}",
                [Metric.KiBPerConnection, Metric.RssBefore, Metric.RssAfter], ["open time"]), RunOnceAsync)],
            SecondsPerRun = warmup + 8,
        });
    }
}
