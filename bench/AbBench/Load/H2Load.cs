using System.Globalization;
using System.Text.RegularExpressions;

namespace AbBench;

/// <summary>
/// The figures of one h2load run (its main duration only, after the warm-up), and what it negotiated: the
/// application protocol h2load names (h2, h2c, http/1.1), and over TLS the version, cipher and key exchange.
/// </summary>
internal sealed record H2LoadResult(
    double RequestsPerSecond, long Done, long Succeeded, long Failed, long Errored, long TimedOut, long Non2xx,
    double MeanUs, double SdUs, bool Https, string? ApplicationProtocol, string? Tls)
{
    public string? Problem()
    {
        var problems = new List<string>();
        if (Done == 0)
        {
            problems.Add("no request completed");
        }
        // Over TLS h2load offers h2 and http/1.1 by ALPN and falls back to HTTP/1.1 when the server does not pick
        // h2: such a run would measure the wrong protocol and still look fine.
        if (Https && ApplicationProtocol != H2Load.AlpnHttp2)
        {
            problems.Add(ApplicationProtocol is null
                ? "h2load did not say which protocol it negotiated"
                : $"h2load negotiated {ApplicationProtocol} by ALPN, not {H2Load.AlpnHttp2}");
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
/// that file's bytes (h2load's <c>-d</c>), each with <see cref="Headers"/> added (<c>-H</c>, "name: value"); over TLS
/// when <see cref="Https"/> (HTTP/2 negotiated by ALPN), else cleartext HTTP/2 by prior knowledge.
/// </summary>
internal sealed record H2LoadRequest(string Path)
{
    public bool Https { get; init; }

    public string? BodyFile { get; init; }

    public IReadOnlyList<string> Headers { get; init; } = [];
}

/// <summary>
/// Runs h2load (nghttp2), pinned to the client CPUs: HTTP/2 cleartext (h2c, prior knowledge) to an http URL, or
/// HTTP/2 over TLS negotiated by ALPN to an https URL. h2load does not verify the server's certificate.
/// </summary>
internal static partial class H2Load
{
    public const int StreamsPerConnection = 10;

    /// <summary>HTTP/2 over TLS, as ALPN names it.</summary>
    public const string AlpnHttp2 = "h2";

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
        "taskset " + CommandLine.Join(Arguments(context, request, ServerProcess.Url(request.Https, "<port>", request.Path),
            request.BodyFile is { } body ? Path.GetFileName(body) : null, connections, seconds, warmup));

    /// <summary>
    /// Runs h2load. <paramref name="onMainStart"/> and <paramref name="onMainEnd"/> are called when h2load says
    /// that its main (measured) duration starts and ends, so that the caller can sample the server's CPU time
    /// around exactly that span.
    /// </summary>
    public static async Task<H2LoadResult> RunAsync(BenchContext context, H2LoadRequest request, int port, int connections, int seconds,
        int warmup, Action onMainStart, Action onMainEnd, CancellationToken cancellation)
    {
        var args = Arguments(context, request, ServerProcess.Url(request.Https, port.ToString(CultureInfo.InvariantCulture), request.Path),
            request.BodyFile, connections, seconds, warmup);
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
        string? Line(Regex regex) => regex.Match(text) is { Success: true } m ? m.Groups[1].Value.Trim() : null;
        string[] tls = [.. new[] { Line(TlsProtocolRegex()), Line(CipherRegex()), Line(ServerTempKeyRegex()) }.OfType<string>()];
        return new H2LoadResult(
            RequestsPerSecond: double.Parse(finished.Groups[1].Value, CultureInfo.InvariantCulture),
            Done: Group(requests, 3),
            Succeeded: Group(requests, 4),
            Failed: Group(requests, 5),
            Errored: Group(requests, 6),
            TimedOut: Group(requests, 7),
            Non2xx: Group(status, 2) + Group(status, 3) + Group(status, 4),
            MeanUs: Microseconds(time.Groups[3].Value),
            SdUs: Microseconds(time.Groups[4].Value),
            Https: request.Https,
            ApplicationProtocol: Line(ApplicationProtocolRegex()),
            Tls: tls.Length > 0 ? string.Join(", ", tls) : null);
    }

    /// <summary>
    /// One run on a warmed-up server: h2load's own warm-up, then its main duration, with the server's CPU time
    /// sampled when h2load says that duration starts and ends, and its peak RSS at the end; its transport counters are
    /// read at the same two moments, each over a connection of its own started right after the CPU sample (the
    /// counters are then those of h2load's main duration, as its request count is; before and after h2load they would
    /// also hold its warm-up's); with a
    /// <paramref name="check"/>, also what h2load's figures cannot tell (its column and its reason to refuse the run).
    /// </summary>
    public static async Task<RunOutcome> MeasureAsync(BenchContext context, IServer server, Variant variant, H2LoadRequest request,
        int connections, int round, H2RunCheck? check = null)
    {
        var afterRun = check is null ? null : await check.BeforeAsync(server);
        var cpuStart = server.ReadCpuTicks();
        var cpuEnd = -1L;
        var startSeen = false;
        Task<IReadOnlyDictionary<string, double>?>? countersStart = null;
        Task<IReadOnlyDictionary<string, double>?>? countersEnd = null;
        var r = await RunAsync(context, request, server.Port, connections, context.Options.DurationSeconds, WarmUp.PerRunSeconds,
            onMainStart: () =>
            {
                Volatile.Write(ref cpuStart, server.ReadCpuTicks());
                Volatile.Write(ref startSeen, true);
                Volatile.Write(ref countersStart, server.ReadTransportCountersAsync(context.Cancellation));
            },
            onMainEnd: () =>
            {
                Volatile.Write(ref cpuEnd, server.ReadCpuTicks());
                Volatile.Write(ref countersEnd, server.ReadTransportCountersAsync(context.Cancellation));
            },
            context.Cancellation);
        if (Volatile.Read(ref cpuEnd) < 0)
        {
            cpuEnd = server.ReadCpuTicks();
        }
        if (!Volatile.Read(ref startSeen))
        {
            context.Progress.WriteLine($"warning: {variant.Name} round {round}: h2load did not say when its main duration started; CPU µs/req includes the warm-up, and there are no per-request transport counts.");
        }
        var peakRss = server.ReadStatusKiB("VmHWM");
        // Without a reading at the start there is nothing to subtract from; one missing at the end is made now.
        var countersBefore = Volatile.Read(ref countersStart) is { } startReading ? await startReading : null;
        var countersAfter = await (Volatile.Read(ref countersEnd) ?? server.ReadTransportCountersAsync(context.Cancellation));
        (string? Detail, string? Problem) checkedRun = afterRun is null ? (null, null) : await afterRun(r);

        var cpuUs = (Volatile.Read(ref cpuEnd) - Volatile.Read(ref cpuStart)) * 1e6 / context.ClockTicksPerSecond;
        var run = new Run(variant.Name, round, new Dictionary<string, double>
        {
            [Metric.Rps.Key] = r.RequestsPerSecond,
            [Metric.MeanLatency.Key] = r.MeanUs,
            [Metric.CpuPerRequest.Key] = r.Done > 0 ? cpuUs / r.Done : double.NaN,
            [Metric.PeakRss.Key] = peakRss,
        },
        [
            Fmt.Count(r.Done), $"{r.Failed}/{r.Errored}/{r.TimedOut}", Fmt.Count(r.Non2xx), Fmt.Latency(r.SdUs),
            .. request.Https ? (string[])[r.ApplicationProtocol ?? "not said", r.Tls ?? "not said"] : [],
            .. checkedRun.Detail is { } detail ? (string[])[detail] : [],
        ]);
        var problem = string.Join("; ", new[] { r.Problem(), checkedRun.Problem }.OfType<string>());
        return new RunOutcome(TransportCounters.WithPerRequest(run, countersBefore, countersAfter, r.Done), problem.Length > 0 ? problem : null);
    }

    /// <summary>The metrics of <see cref="MeasureAsync"/>'s runs: h2load gives a mean latency, no percentiles.</summary>
    public static readonly Metric[] Metrics = [Metric.Rps, Metric.MeanLatency, Metric.CpuPerRequest, Metric.PeakRss];

    /// <summary>
    /// The detail columns of <see cref="MeasureAsync"/>'s runs; over TLS also what was negotiated, and the check's
    /// column if there is one.
    /// </summary>
    public static string[] Details(bool https, H2RunCheck? check = null) =>
        ["requests", "failed/errored/timeout", "non-2xx", "latency sd", .. https ? (string[])["ALPN", "TLS"] : [],
            .. check is null ? [] : (string[])[check.Column]];

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

    [GeneratedRegex(@"^Application protocol: (.+)$", RegexOptions.Multiline)]
    private static partial Regex ApplicationProtocolRegex();

    [GeneratedRegex(@"^TLS Protocol: (.+)$", RegexOptions.Multiline)]
    private static partial Regex TlsProtocolRegex();

    [GeneratedRegex(@"^Cipher: (.+)$", RegexOptions.Multiline)]
    private static partial Regex CipherRegex();

    [GeneratedRegex(@"^Server Temp Key: (.+)$", RegexOptions.Multiline)]
    private static partial Regex ServerTempKeyRegex();

    [GeneratedRegex(@"^([\d.]+)(us|ms|s)$")]
    private static partial Regex DurationRegex();
}
