namespace AbBench;

/// <summary>Median and range of a handful of values.</summary>
internal readonly record struct Summary(double Median, double Min, double Max, int Count)
{
    public static Summary Of(IEnumerable<double> values)
    {
        var sorted = values.Where(v => !double.IsNaN(v)).Order().ToArray();
        if (sorted.Length == 0)
        {
            return new Summary(double.NaN, double.NaN, double.NaN, 0);
        }
        var mid = sorted.Length / 2;
        var median = sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
        return new Summary(median, sorted[0], sorted[^1], sorted.Length);
    }
}

/// <summary>A figure measured per run, how it is shown, and whether lower or higher is better.</summary>
internal sealed record Metric(string Key, string Header, Func<double, string> Format, bool HigherIsBetter, bool InRatios,
    bool InChart, bool ShowRange = false, string? RatioHeader = null)
{
    public string RatioName => RatioHeader ?? Header;

    public static readonly Metric Rps = new("rps", "req/s", Fmt.Count, HigherIsBetter: true, InRatios: true, InChart: true, ShowRange: true);
    public static readonly Metric P50 = new("p50", "p50", Fmt.Latency, HigherIsBetter: false, InRatios: false, InChart: false);
    public static readonly Metric P99 = new("p99", "p99", Fmt.Latency, HigherIsBetter: false, InRatios: true, InChart: false);
    public static readonly Metric MeanLatency = new("mean", "mean latency", Fmt.Latency, HigherIsBetter: false, InRatios: true, InChart: false);
    public static readonly Metric CpuPerRequest = new("cpu", "CPU µs/req", Fmt.Fixed2, HigherIsBetter: false, InRatios: true, InChart: true, RatioHeader: "CPU/req");
    /// <summary>The CPU µs per request of a proxy in front of the server (proxy: nginx's), beside the server's own.</summary>
    public static readonly Metric ProxyCpuPerRequest = new("proxyCpu", "proxy CPU µs/req", Fmt.Fixed2, HigherIsBetter: false, InRatios: true, InChart: false, RatioHeader: "proxy CPU/req");
    public static readonly Metric PeakRss = new("rss", "peak RSS", Fmt.MiB, HigherIsBetter: false, InRatios: true, InChart: false, RatioHeader: "RSS");
    public static readonly Metric KiBPerConnection = new("kib", "KiB/conn", Fmt.Fixed2, HigherIsBetter: false, InRatios: true, InChart: true, ShowRange: true);
    public static readonly Metric RssBefore = new("rss0", "RSS before", Fmt.MiB, HigherIsBetter: false, InRatios: false, InChart: false);
    public static readonly Metric RssAfter = new("rss1", "RSS with conns", Fmt.MiB, HigherIsBetter: false, InRatios: false, InChart: false);

    // The disk scenario's two loads at once: a hot file that is always cached, and random files from a cold set.
    public static readonly Metric HotRps = new("hot", "hot req/s", Fmt.Count, HigherIsBetter: true, InRatios: true, InChart: true, ShowRange: true);
    public static readonly Metric HotP50 = new("hot50", "hot p50", Fmt.Latency, HigherIsBetter: false, InRatios: false, InChart: false);
    public static readonly Metric HotP99 = new("hot99", "hot p99", Fmt.Latency, HigherIsBetter: false, InRatios: true, InChart: false);
    public static readonly Metric ColdRps = new("cold", "cold files/s", Fmt.Count, HigherIsBetter: true, InRatios: true, InChart: true, ShowRange: true);
    public static readonly Metric ColdErrors = new("coldErrors", "cold errors", Fmt.Count, HigherIsBetter: false, InRatios: false, InChart: false);
    public static readonly Metric TotalRps = new("total", "total req/s", Fmt.Count, HigherIsBetter: true, InRatios: true, InChart: true, ShowRange: true);
}

/// <summary>One measured run: which variant, which round, its figures (by metric key) and raw details.</summary>
internal sealed record Run(string Variant, int Round, IReadOnlyDictionary<string, double> Values, IReadOnlyList<string> Details)
{
    /// <summary>
    /// Metrics beyond the case's own that this run's server reported (the transport's counters per request): they
    /// become columns of the case, and a run without one shows none.
    /// </summary>
    public IReadOnlyList<Metric> Reported { get; init; } = [];

    /// <summary>The run's figure in <paramref name="metric"/>; NaN when the run has none.</summary>
    public double Value(Metric metric) => Values.TryGetValue(metric.Key, out var value) ? value : double.NaN;
}

/// <summary>One sub-result of a scenario, e.g. "64 connections", with its own A B C rounds.</summary>
internal sealed class CaseResult(string title, string label, IReadOnlyList<Metric> metrics, IReadOnlyList<string> detailHeaders)
{
    private readonly IReadOnlyList<Metric> _metrics = metrics;

    public string Title { get; } = title;

    /// <summary>A short label for the chart, e.g. "c=64".</summary>
    public string Label { get; } = label;

    /// <summary>The case's own metrics, then those that its runs' servers reported, in the order they first appeared.</summary>
    public IReadOnlyList<Metric> Metrics => [.. _metrics, .. Runs.SelectMany(r => r.Reported).Distinct().Except(_metrics)];

    public IReadOnlyList<string> DetailHeaders { get; } = detailHeaders;

    public List<Run> Runs { get; } = [];

    public Summary Of(string variant, Metric metric) =>
        Summary.Of(Runs.Where(r => r.Variant == variant).Select(r => r.Value(metric)));

    /// <summary>The ratio variant/baseline of each round both have, in round order.</summary>
    public IReadOnlyList<(int Round, double Ratio)> RoundRatios(string variant, string baseline, Metric metric)
    {
        var ratios = new List<(int, double)>();
        foreach (var run in Runs.Where(r => r.Variant == variant).OrderBy(r => r.Round))
        {
            if (Runs.FirstOrDefault(r => r.Variant == baseline && r.Round == run.Round) is { } baseRun
                && baseRun.Value(metric) is var b && b > 0)
            {
                ratios.Add((run.Round, run.Value(metric) / b));
            }
        }
        return ratios;
    }

    public Summary Ratio(string variant, string baseline, Metric metric) =>
        Summary.Of(RoundRatios(variant, baseline, metric).Select(r => r.Ratio));
}

/// <summary>Number formats, culture-invariant.</summary>
internal static class Fmt
{
    public static string Count(double v) => double.IsNaN(v) ? "n/a" : v.ToString("N0", System.Globalization.CultureInfo.InvariantCulture);

    public static string Fixed2(double v) => double.IsNaN(v) ? "n/a" : v.ToString("0.00", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>A count per request, such as wake-ups/req; a dash where the server has no such counter.</summary>
    public static string PerRequest(double v) => double.IsNaN(v) ? "–" : v.ToString("0.000", System.Globalization.CultureInfo.InvariantCulture);

    public static string Ratio(double v) => double.IsNaN(v) ? "n/a" : v.ToString("0.000", System.Globalization.CultureInfo.InvariantCulture);

    public static string MiB(double kib) => double.IsNaN(kib) ? "n/a" : (kib / 1024).ToString("0.0", System.Globalization.CultureInfo.InvariantCulture) + " MiB";

    /// <summary>A latency given in µs: "850 µs" below a millisecond, "2.31 ms" above.</summary>
    public static string Latency(double us) =>
        double.IsNaN(us) ? "n/a"
        : us < 1000 ? us.ToString("0", System.Globalization.CultureInfo.InvariantCulture) + " µs"
        : (us / 1000).ToString("0.00", System.Globalization.CultureInfo.InvariantCulture) + " ms";

    public static string Range(Summary s, Func<double, string> format) =>
        s.Count == 0 ? "n/a" : s.Count == 1 ? format(s.Median) : $"{format(s.Median)} ({format(s.Min)}–{format(s.Max)})";
}
