using System.Globalization;

namespace AbBench;

/// <summary>What one wrk load is: the request path, the Lua script (in scripts/) with its arguments, the connections.</summary>
internal sealed record WrkLoad(string Path, string Script, IReadOnlyList<string> ScriptArgs, int Connections)
{
    /// <summary>
    /// wrk's --timeout in seconds; null keeps wrk's 2 s. wrk also drops the latency of a response slower than
    /// its timeout, so a load whose tail may be seconds long (a disk-bound server) needs a longer one.
    /// </summary>
    public int? TimeoutSeconds { get; init; }

    /// <summary>
    /// Whether the URL is https: wrk then speaks TLS (OpenSSL, and it does not verify the server's certificate, so the
    /// harness's self-signed one serves) and sends HTTP/1.1 over it; it offers no ALPN.
    /// </summary>
    public bool Https { get; init; }

    /// <summary>
    /// The body size every response must carry (a static file), or null. wrk does not look at bodies: a run whose
    /// bytes read per completed response fall below this served something shorter than the file.
    /// </summary>
    public long? BodyBytes { get; init; }

    /// <summary>Extra request headers, each passed to wrk as <c>-H "Name: value"</c> (e.g. <c>Connection: close</c>).</summary>
    public IReadOnlyList<string> Headers { get; init; } = [];
}

/// <summary>
/// A reverse proxy between wrk and the measured server: wrk connects to 127.0.0.1:<see cref="Port"/>, where
/// <see cref="Proxy"/> listens and passes the requests on to the server.
/// </summary>
internal sealed record ProxyHop(IServer Proxy, int Port);

/// <summary>The ABRESULT line that the scripts' done() prints.</summary>
internal sealed record WrkResult(
    long Requests, long DurationUs, long ConnectErrors, long ReadErrors, long WriteErrors, long StatusErrors,
    long TimeoutErrors, double P50Us, double P99Us, double MeanUs, long Bytes, long? BodyBytes)
{
    public double RequestsPerSecond => DurationUs > 0 ? Requests / (DurationUs / 1e6) : 0;

    public long SocketErrors => ConnectErrors + ReadErrors + WriteErrors + TimeoutErrors;

    /// <summary>The socket error counts as the detail columns show them: connect/read/write/timeout.</summary>
    public string ErrorCounts => $"{ConnectErrors}/{ReadErrors}/{WriteErrors}/{TimeoutErrors}";

    /// <summary>
    /// What went wrong in the run, or null if nothing did. wrk counts every status >= 400 as a status error.
    /// Without <paramref name="socketErrors"/>, connect, read, write and timeout errors are left to the caller to
    /// report: a disk-bound server is expected to time some requests out.
    /// </summary>
    public string? Problem(bool socketErrors = true)
    {
        var problems = new List<string>();
        if (Requests == 0)
        {
            problems.Add("no request completed");
        }
        if (socketErrors && SocketErrors > 0)
        {
            problems.Add($"socket errors: connect {ConnectErrors}, read {ReadErrors}, write {WriteErrors}, timeout {TimeoutErrors}");
        }
        if (StatusErrors > 0)
        {
            problems.Add($"{StatusErrors} non-2xx responses (status >= 400)");
        }
        // wrk's byte count also holds the responses cut off at the end, so only a shortfall says something.
        if (BodyBytes is { } body && Requests > 0 && Bytes < Requests * body)
        {
            problems.Add($"{Bytes / Requests:N0} bytes read per response, less than the file's {body:N0}");
        }
        return problems.Count == 0 ? null : string.Join("; ", problems);
    }
}

/// <summary>Runs wrk pinned to the client CPUs, under prlimit so that thousands of connections have their fds.</summary>
internal static class Wrk
{
    private static string[] Arguments(BenchContext context, WrkLoad load, string scriptPath, string url, int seconds) =>
    [
        "-c", context.Options.ClientCpus,
        "prlimit", $"--nofile={context.LoadNoFileLimit}:{context.LoadNoFileLimit}",
        "wrk", $"-t{context.Options.LoadThreads}", $"-c{load.Connections}", $"-d{seconds}s", "--latency",
        .. load.TimeoutSeconds is { } timeout ? (string[])["--timeout", $"{timeout}s"] : [],
        .. load.Headers.SelectMany(header => (string[])["-H", header]),
        "-s", scriptPath, url,
        .. load.ScriptArgs.Count > 0 ? ["--", .. load.ScriptArgs] : Array.Empty<string>(),
    ];

    /// <summary>The command as the result file shows it: repository-relative script path, port left open.</summary>
    public static string DisplayCommand(BenchContext context, WrkLoad load, int seconds) =>
        "taskset " + CommandLine.Join(Arguments(context, load, $"bench/AbBench/scripts/{load.Script}", ServerProcess.Url(load.Https, "<port>", load.Path), seconds));

    public static async Task<WrkResult> RunAsync(BenchContext context, WrkLoad load, int port, int seconds, CancellationToken cancellation)
    {
        var args = Arguments(context, load, Path.Combine(context.ScriptsDir, load.Script), ServerProcess.Url(load.Https, port.ToString(CultureInfo.InvariantCulture), load.Path), seconds);
        var output = await Processes.RunAsync("taskset", args, TimeSpan.FromSeconds(seconds + (load.TimeoutSeconds ?? 0) + 60), cancellation);
        var line = output.StdOut.Split('\n').FirstOrDefault(l => l.StartsWith("ABRESULT ", StringComparison.Ordinal));
        if (output.ExitCode != 0 || line is null)
        {
            throw new BenchException($"wrk failed (exit code {output.ExitCode}{(line is null ? ", no ABRESULT line" : "")}):\n{output.Tail()}");
        }

        var values = new Dictionary<string, double>();
        foreach (var pair in line["ABRESULT ".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            values[pair[..equals]] = double.Parse(pair[(equals + 1)..], CultureInfo.InvariantCulture);
        }
        long Count(string key) => (long)values[key];
        return new WrkResult(
            Count("requests"), Count("duration_us"), Count("errors_connect"), Count("errors_read"), Count("errors_write"),
            Count("errors_status"), Count("errors_timeout"), values["p50_us"], values["p99_us"], values["mean_us"],
            Count("bytes"), load.BodyBytes);
    }

    /// <summary>
    /// One run on a warmed-up server: a short warm-up with the run's own load (not recorded), then the measured load,
    /// with the server's CPU time read right before and after it and its peak RSS at the end. Its transport counters
    /// are read outside that: before the CPU time, and after the peak RSS. With <paramref name="via"/> both loads go
    /// through that proxy to the server, and the proxy's CPU time is read right inside the server's
    /// (<see cref="Metric.ProxyCpuPerRequest"/>).
    /// </summary>
    public static async Task<RunOutcome> MeasureAsync(BenchContext context, IServer server, Variant variant, WrkLoad load, int round, ProxyHop? via = null)
    {
        var ct = context.Cancellation;
        var port = via?.Port ?? server.Port;
        await WarmUp.WrkWindow(context, load, port)(server, WarmUp.PerRunSeconds);

        var countersBefore = await server.ReadTransportCountersAsync(ct);
        var cpuBefore = server.ReadCpuTicks();
        var proxyCpuBefore = via?.Proxy.ReadCpuTicks() ?? 0;
        var r = await RunAsync(context, load, port, context.Options.DurationSeconds, ct);
        var proxyCpuAfter = via?.Proxy.ReadCpuTicks() ?? 0;
        var cpuAfter = server.ReadCpuTicks();
        var peakRss = server.ReadStatusKiB("VmHWM");
        var countersAfter = await server.ReadTransportCountersAsync(ct);

        double PerRequest(long ticks) => r.Requests > 0 ? ticks * 1e6 / context.ClockTicksPerSecond / r.Requests : double.NaN;
        var values = new Dictionary<string, double>
        {
            [Metric.Rps.Key] = r.RequestsPerSecond,
            [Metric.P50.Key] = r.P50Us,
            [Metric.P99.Key] = r.P99Us,
            [Metric.CpuPerRequest.Key] = PerRequest(cpuAfter - cpuBefore),
            [Metric.PeakRss.Key] = peakRss,
        };
        if (via is not null)
        {
            values[Metric.ProxyCpuPerRequest.Key] = PerRequest(proxyCpuAfter - proxyCpuBefore);
        }
        var run = new Run(variant.Name, round, values, [Fmt.Count(r.Requests), r.ErrorCounts, Fmt.Count(r.StatusErrors)]);
        return new RunOutcome(TransportCounters.WithPerRequest(run, countersBefore, countersAfter, r.Requests), r.Problem());
    }

    /// <summary>The metrics of <see cref="MeasureAsync"/>'s runs.</summary>
    public static readonly Metric[] Metrics = [Metric.Rps, Metric.P50, Metric.P99, Metric.CpuPerRequest, Metric.PeakRss];

    /// <summary>The detail columns of <see cref="MeasureAsync"/>'s runs.</summary>
    public static readonly string[] Details = ["requests", "errors connect/read/write/timeout", "status >= 400"];
}
