using System.Collections.Concurrent;
using System.Globalization;

namespace AbBench;

/// <summary>
/// The epoll transport's counters of a running sample, as its <c>GET /transport/metrics</c> lists them (<c>name value</c>
/// lines, summed over the reactors), and what the wrk and h2load runs make of them: each counter's growth over the
/// measured window ÷ the requests completed in it. A server without them (Sockets, nginx) gets no such figure.
/// </summary>
internal static class TransportCounters
{
    public const string Path = "/transport/metrics";

    private const string WakeUps = "epoll.reactor.wakeups.sent";

    /// <summary>
    /// The counters reported per request, in column order: an exact name, or with <c>Family</c> every counter whose
    /// name starts with it (each its own column, named after the counter). The header is the column's name.
    /// </summary>
    private static readonly (string Name, string? Header, bool Family)[] PerRequest =
    [
        // An eventfd write: a flush handed to a reactor asleep in epoll_wait, paid with a wake-up and a context switch.
        (WakeUps, "wake-ups/req", false),
        ("epoll.reactor.sends", "sends/req", false),
        // The send path's own counts (e.g. which thread made the sendmsg), for a transport that has them.
        ("epoll.connection.sends", null, true),
    ];

    private static readonly ConcurrentDictionary<string, Metric> Metrics = new();

    /// <summary>Eventfd writes per request: a target in its own right (a bound on a variant's median, not a ratio).</summary>
    public static Metric WakeUpsPerRequest => MetricOf(WakeUps, PerRequest[0].Header);

    /// <summary>The lines of <c>GET /transport/metrics</c>: counter name to value.</summary>
    public static IReadOnlyDictionary<string, double> Parse(string body)
    {
        var counters = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var line in body.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = line.Split(' ');
            if (parts.Length != 2 || !double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
            {
                throw new BenchException($"GET {Path}: the line '{line}' is not 'name value'.");
            }
            counters[parts[0]] = value;
        }
        return counters;
    }

    /// <summary>
    /// <paramref name="run"/> with the counters of <see cref="PerRequest"/> that both readings have, each as its growth
    /// between them ÷ <paramref name="requests"/>; unchanged when either reading is null (no such endpoint) or no
    /// request completed.
    /// </summary>
    public static Run WithPerRequest(Run run, IReadOnlyDictionary<string, double>? before, IReadOnlyDictionary<string, double>? after, long requests)
    {
        if (before is null || after is null || requests <= 0)
        {
            return run;
        }
        var values = new Dictionary<string, double>(run.Values);
        var reported = new List<Metric>();
        foreach (var (name, header, family) in PerRequest)
        {
            IEnumerable<string> counters = family ? after.Keys.Where(k => k.StartsWith(name, StringComparison.Ordinal)).Order(StringComparer.Ordinal) : [name];
            foreach (var counter in counters)
            {
                if (before.TryGetValue(counter, out var first) && after.TryGetValue(counter, out var last))
                {
                    var metric = MetricOf(counter, header);
                    values[metric.Key] = (last - first) / requests;
                    reported.Add(metric);
                }
            }
        }
        return run with { Values = values, Reported = reported };
    }

    /// <summary>One metric per counter, so that the runs of every variant fill the same column.</summary>
    private static Metric MetricOf(string counter, string? header) =>
        Metrics.GetOrAdd(counter, c => new Metric($"per-request:{c}", header ?? $"{c["epoll.".Length..]}/req", Fmt.PerRequest,
            HigherIsBetter: false, InRatios: false, InChart: false));
}
