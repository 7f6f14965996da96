using System.Globalization;
using System.Text.RegularExpressions;

namespace AbBench;

/// <summary>The figures of one h2load run (its main duration only, after the warm-up).</summary>
internal sealed record H2LoadResult(
    double RequestsPerSecond, long Done, long Succeeded, long Failed, long Errored, long TimedOut, long Non2xx,
    double MeanUs, double SdUs)
{
    public string? Problem()
    {
        var problems = new List<string>();
        if (Done == 0)
        {
            problems.Add("no request completed");
        }
        if (Failed > 0 || Errored > 0 || TimedOut > 0)
        {
            problems.Add($"{Failed} failed, {Errored} errored, {TimedOut} timed out");
        }
        if (Non2xx > 0)
        {
            problems.Add($"{Non2xx} non-2xx responses");
        }
        return problems.Count == 0 ? null : string.Join("; ", problems);
    }
}

/// <summary>
/// What every request of an h2load run is: a GET of <see cref="Path"/>, or, with a <see cref="BodyFile"/>, a POST of
/// that file's bytes (h2load's <c>-d</c>), each with <see cref="Headers"/> added (<c>-H</c>, "name: value").
/// </summary>
internal sealed record H2LoadRequest(string Path)
{
    public string? BodyFile { get; init; }

    public IReadOnlyList<string> Headers { get; init; } = [];
}

/// <summary>Runs h2load (nghttp2) for HTTP/2 cleartext, pinned to the client CPUs.</summary>
internal static partial class H2Load
{
    public const int StreamsPerConnection = 10;

    private static string[] Arguments(BenchContext context, H2LoadRequest request, string url, string? bodyFile, int connections, int seconds, int warmup) =>
    [
        "-c", context.Options.ClientCpus,
        "prlimit", $"--nofile={context.LoadNoFileLimit}:{context.LoadNoFileLimit}",
        "h2load", "-t", $"{context.Options.LoadThreads}", "-c", $"{connections}", "-m", $"{StreamsPerConnection}",
        "-D", $"{seconds}", .. warmup > 0 ? (string[])[$"--warm-up-time={warmup}"] : [],
        .. bodyFile is null ? (string[])[] : ["-d", bodyFile],
        .. request.Headers.SelectMany(h => (string[])["-H", h]),
        url,
    ];

    /// <summary>The command for the result file: the port differs per run, and the body file is named without its folder.</summary>
    public static string DisplayCommand(BenchContext context, H2LoadRequest request, int connections, int seconds, int warmup) =>
        "taskset " + CommandLine.Join(Arguments(context, request, $"http://127.0.0.1:<port>{request.Path}",
            request.BodyFile is { } body ? Path.GetFileName(body) : null, connections, seconds, warmup));

    /// <summary>
    /// Runs h2load. <paramref name="onMainStart"/> and <paramref name="onMainEnd"/> are called when h2load says
    /// that its main (measured) duration starts and ends, so that the caller can sample the server's CPU time
    /// around exactly that span.
    /// </summary>
    public static async Task<H2LoadResult> RunAsync(BenchContext context, H2LoadRequest request, int port, int connections, int seconds,
        int warmup, Action onMainStart, Action onMainEnd, CancellationToken cancellation)
    {
        var args = Arguments(context, request, $"http://127.0.0.1:{port}{request.Path}", request.BodyFile, connections, seconds, warmup);
        var output = await Processes.RunAsync("taskset", args, TimeSpan.FromSeconds(seconds + warmup + 60), cancellation,
            onLine: line =>
            {
                if (line.StartsWith("Main benchmark duration is started", StringComparison.Ordinal))
                {
                    onMainStart();
                }
                else if (line.StartsWith("Main benchmark duration is over", StringComparison.Ordinal))
                {
                    onMainEnd();
                }
            });

        var text = output.StdOut;
        var finished = FinishedRegex().Match(text);
        var requests = RequestsRegex().Match(text);
        var status = StatusRegex().Match(text);
        var time = TimeForRequestRegex().Match(text);
        if (!finished.Success || !requests.Success || !status.Success || !time.Success)
        {
            throw new BenchException($"h2load failed (exit code {output.ExitCode}; its summary is missing or not understood):\n{output.Tail()}");
        }

        long Group(Match m, int i) => m.Groups[i].Success ? long.Parse(m.Groups[i].Value, CultureInfo.InvariantCulture) : 0;
        return new H2LoadResult(
            RequestsPerSecond: double.Parse(finished.Groups[1].Value, CultureInfo.InvariantCulture),
            Done: Group(requests, 3),
            Succeeded: Group(requests, 4),
            Failed: Group(requests, 5),
            Errored: Group(requests, 6),
            TimedOut: Group(requests, 7),
            Non2xx: Group(status, 2) + Group(status, 3) + Group(status, 4),
            MeanUs: Microseconds(time.Groups[3].Value),
            SdUs: Microseconds(time.Groups[4].Value));
    }

    /// <summary>An h2load duration such as 280us, 26.42ms or 1.5s, in microseconds.</summary>
    private static double Microseconds(string value)
    {
        var m = DurationRegex().Match(value);
        if (!m.Success)
        {
            throw new BenchException($"h2load: cannot read the duration '{value}'.");
        }
        var number = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        return m.Groups[2].Value switch
        {
            "us" => number,
            "ms" => number * 1e3,
            "s" => number * 1e6,
            _ => throw new BenchException($"h2load: unknown unit in '{value}'."),
        };
    }

    [GeneratedRegex(@"^finished in [\d.]+s, ([\d.]+) req/s", RegexOptions.Multiline)]
    private static partial Regex FinishedRegex();

    [GeneratedRegex(@"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored(?:, (\d+) timeout)?", RegexOptions.Multiline)]
    private static partial Regex RequestsRegex();

    [GeneratedRegex(@"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", RegexOptions.Multiline)]
    private static partial Regex StatusRegex();

    [GeneratedRegex(@"^time for request:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", RegexOptions.Multiline)]
    private static partial Regex TimeForRequestRegex();

    [GeneratedRegex(@"^([\d.]+)(us|ms|s)$")]
    private static partial Regex DurationRegex();
}
