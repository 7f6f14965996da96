namespace AbBench;

/// <summary>
/// The epoll transport's targets against the baseline (Sockets with default scheduling, unless --variant says
/// otherwise) in the workloads apps run: HTTP/1.1 cleartext, HTTP/2, TLS and gRPC, and HTTP/1.1 behind nginx. Each scenario names its cases'
/// targets here, in one table; the section lists, per target, req/s (with its floor: no round below), p99 where one
/// is set, CPU µs/req at most the baseline's, and for each epoll variant its own eventfd wake-ups per request.
/// </summary>
internal static class TransportTargets
{
    public const string Epoll = "epoll";
    public const string EpollInline = "epoll-inline";

    /// <summary>The most eventfd writes per request (issue 13): a flush should rarely have to wake its reactor.</summary>
    private const double MostWakeUpsPerRequest = 0.05;

    public static readonly Action<ScenarioResult> Plaintext = For(
        new CaseTargets("c=256", new RateTarget(Epoll, 1.50, Floor: 1.20), new RateTarget(EpollInline, 1.60, Floor: 1.30, P99AtMost: 0.7)));

    public static readonly Action<ScenarioResult> Json = For(new CaseTargets("c=256", new RateTarget(Epoll, 1.60, Floor: 1.30)));

    public static readonly Action<ScenarioResult> H2 = For(
        new CaseTargets($"c={H2Scenario.DefaultConnections}", new RateTarget(Epoll, 1.15, Floor: 0.95), new RateTarget(EpollInline, 1.20)));

    public static readonly Action<ScenarioResult> Grpc = For(new CaseTargets($"c={H2Scenario.DefaultConnections}", new RateTarget(Epoll, 1.10, Floor: 0.95)));

    /// <summary><see cref="TlsScenario"/>'s, given its case labels.</summary>
    public static Action<ScenarioResult> Tls(string http1Case, string http2Case) => For(
        new CaseTargets(http1Case, new RateTarget(Epoll, 1.30, Floor: 1.10)),
        new CaseTargets(http2Case, new RateTarget(Epoll, 1.10, Floor: 0.95)));

    /// <summary>
    /// <see cref="ProxyScenario"/>'s, behind nginx over a Unix socket, given that case's label. Its TCP loopback case
    /// has no target: it is reported only, in its own tables.
    /// </summary>
    public static Action<ScenarioResult> Proxy(string unixCase, string tcpCase) => result => result.Extra.Add(Section(result,
        [new CaseTargets(unixCase, new RateTarget(Epoll, 1.30), new RateTarget(EpollInline, 1.40))],
        $"{tcpCase} (nginx to the sample over TCP loopback) has no target: its ratios are reported only, in its own tables."));

    private static Action<ScenarioResult> For(params CaseTargets[] cases) => result => result.Extra.Add(Section(result, cases));

    private static Section Section(ScenarioResult result, CaseTargets[] cases, string? note = null)
    {
        var baseline = result.Baseline;
        var targets = new Targets();
        foreach (var (label, rates) in cases)
        {
            var c = result.Cases.FirstOrDefault(r => r.Label == label);
            foreach (var rate in rates)
            {
                var floor = rate.Floor is { } f ? $", no round below {Fmt.Fixed2(f)}" : "";
                targets.Add($"{label}: {rate.Variant} req/s ≥ {Fmt.Fixed2(rate.AtLeast)}× {baseline}{floor}", c, rate.Variant, baseline, Metric.Rps, rate.AtLeast, atLeast: true, rate.Floor);
                if (rate.P99AtMost is { } p99)
                {
                    targets.Add($"{label}: {rate.Variant} p99 ≤ {Fmt.Fixed2(p99)}× {baseline}", c, rate.Variant, baseline, Metric.P99, p99, atLeast: false);
                }
                targets.Add($"{label}: {rate.Variant} CPU µs/req ≤ 1.00× {baseline}", c, rate.Variant, baseline, Metric.CpuPerRequest, 1, atLeast: false);
            }
            foreach (var variant in (string[])[Epoll, EpollInline])
            {
                targets.AddOwn($"{label}: {variant} wake-ups/req ≤ {Fmt.Fixed2(MostWakeUpsPerRequest)}", c, variant, TransportCounters.WakeUpsPerRequest, MostWakeUpsPerRequest, atLeast: false);
            }
        }
        return targets.ToSection($"Targets: the epoll variants vs {baseline}",
            [
                "Ratios are judged on the median of the per-round ratios and, where a floor is given (no round below), on their minimum; " +
                $"wake-ups/req (eventfd writes per request, {TransportCounters.Path}) on the variant's own median. Quote none from fewer than 3 rounds.",
                .. note is null ? Array.Empty<string>() : [note],
            ]);
    }

    /// <summary>The targets of one case, found by its label (e.g. <c>c=256</c>).</summary>
    private sealed record CaseTargets(string Label, params RateTarget[] Rates);

    /// <summary>
    /// <see cref="Variant"/> req/s at least <see cref="AtLeast"/>× the baseline's (median of the per-round ratios), no
    /// round below <see cref="Floor"/>, p99 at most <see cref="P99AtMost"/>× the baseline's; CPU µs/req at most the
    /// baseline's always.
    /// </summary>
    private sealed record RateTarget(string Variant, double AtLeast, double? Floor = null, double? P99AtMost = null);
}
