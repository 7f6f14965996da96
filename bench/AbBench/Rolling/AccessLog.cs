using System.Globalization;

namespace AbBench;

/// <summary>
/// What nginx's access log says about the requests of a run (<see cref="RollingCluster.Config"/>'s format): the
/// status each client got, how many requests nginx passed to a second instance after the first failed
/// (<c>$upstream_status</c> lists every instance tried, e.g. <c>502, 200</c>), the slowest, and the methods of the
/// requests that failed (a POST is not passed to another instance once sent).
/// </summary>
internal sealed record AccessLog(long Requests, IReadOnlyDictionary<int, long> Statuses, long Retried, double SlowestUs, double P99Us,
    IReadOnlyDictionary<string, long> GatewayErrorsByMethod)
{
    /// <summary>The lines from <paramref name="offset"/> (a length the log had before the run) to the end.</summary>
    public static AccessLog Read(string path, long offset)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        stream.Seek(offset, SeekOrigin.Begin);
        using var reader = new StreamReader(stream);
        var statuses = new Dictionary<int, long>();
        var times = new List<double>();
        long retried = 0;
        var failedByMethod = new Dictionary<string, long>();
        while (reader.ReadLine() is { } line)
        {
            // 1701640000.123 200 "200" 0.003 GET
            var quoted = line.Split('"');
            var head = quoted[0].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (quoted.Length < 3 || head.Length < 2 || !int.TryParse(head[1], CultureInfo.InvariantCulture, out var status))
            {
                continue;
            }
            statuses[status] = statuses.GetValueOrDefault(status) + 1;
            if (quoted[1].Contains(',', StringComparison.Ordinal))
            {
                retried++;
            }
            var tail = quoted[2].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (tail.Length > 0 && double.TryParse(tail[0], CultureInfo.InvariantCulture, out var seconds))
            {
                times.Add(seconds * 1e6);
            }
            if (status is 502 or 504 && tail.Length > 1)
            {
                failedByMethod[tail[1]] = failedByMethod.GetValueOrDefault(tail[1]) + 1;
            }
        }
        times.Sort();
        return new AccessLog(statuses.Values.Sum(), statuses, retried,
            times.Count == 0 ? double.NaN : times[^1],
            times.Count == 0 ? double.NaN : times[Math.Min(times.Count - 1, (int)Math.Ceiling(times.Count * 0.99) - 1)],
            failedByMethod);
    }

    /// <summary>
    /// Why nginx gave up on an instance, from its error log from <paramref name="offset"/> on: each failed attempt is one
    /// line (retried or not), e.g. "recv() failed (104: Connection reset by peer) while reading response header from
    /// upstream", with the request's method in its <c>request: "POST /echo HTTP/1.1"</c>.
    /// </summary>
    public static string UpstreamErrors(string path, long offset)
    {
        if (!File.Exists(path))
        {
            return "n/a";
        }
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        stream.Seek(Math.Min(offset, stream.Length), SeekOrigin.Begin);
        using var reader = new StreamReader(stream);
        var counts = new SortedDictionary<string, long>(StringComparer.Ordinal);
        while (reader.ReadLine() is { } line)
        {
            if (!line.Contains("upstream", StringComparison.Ordinal))
            {
                continue;
            }
            var why = line.Contains("reset by peer", StringComparison.Ordinal) ? "reset"
                : line.Contains("prematurely closed", StringComparison.Ordinal) ? "closed"
                : line.Contains("refused", StringComparison.Ordinal) ? "refused"
                : line.Contains("timed out", StringComparison.Ordinal) ? "timed out"
                : "other";
            var at = line.IndexOf("request: \"", StringComparison.Ordinal);
            var method = at < 0 ? "?" : line[(at + 10)..].Split(' ')[0];
            var key = $"{why} {method}";
            counts[key] = counts.GetValueOrDefault(key) + 1;
        }
        return counts.Count == 0 ? "none" : string.Join(", ", counts.Select(c => $"{c.Key} {c.Value.ToString("N0", CultureInfo.InvariantCulture)}"));
    }

    public static long Length(string path) => File.Exists(path) ? new FileInfo(path).Length : 0;

    /// <summary>502 and 504: nginx found no instance that answered.</summary>
    public long GatewayErrors => Statuses.GetValueOrDefault(502) + Statuses.GetValueOrDefault(504);

    /// <summary>499: the client closed first (wrk, when its time is up, with requests in flight); no client saw these.</summary>
    public long ClientClosed => Statuses.GetValueOrDefault(499);

    /// <summary>Every status but 2xx and 499.</summary>
    public long Non2xx => Statuses.Where(s => s.Key is < 200 or >= 300 && s.Key != 499).Sum(s => s.Value);

    public string Breakdown => string.Join(", ", Statuses.OrderBy(s => s.Key).Select(s => $"{s.Key}: {s.Value.ToString("N0", CultureInfo.InvariantCulture)}"));
}
