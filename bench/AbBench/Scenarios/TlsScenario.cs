namespace AbBench;

/// <summary>
/// tls: GET /plaintext over HTTPS, against a self-signed certificate the harness makes for the scenario. Two
/// sub-results in one file: HTTP/1.1 with wrk (which offers no ALPN) and HTTP/2 negotiated by ALPN with h2load; a
/// run in which h2load did not get h2 is refused. The sample's https endpoint keeps Kestrel's default protocols
/// (HTTP/1.1 and HTTP/2), so one server per variant serves both. Same method as the wrk scenarios and h2: shared
/// servers warmed up until steady, rounds interleaved.
/// </summary>
internal sealed class TlsScenario : Scenario
{
    private const int Http1Connections = 256;
    private const int Http2Connections = 64;

    public override string Name => "tls";

    public override string Summary =>
        $"HTTPS GET /plaintext, self-signed certificate: HTTP/1.1 at {Http1Connections} connections (wrk) and HTTP/2 by ALPN at {Http2Connections} connections x {H2Load.StreamsPerConnection} streams (h2load)";

    public override LoadTool Tool => LoadTool.Wrk | LoadTool.H2Load;

    public override Task<ScenarioPlan> PlanAsync(BenchContext context)
    {
        var o = context.Options;
        var warmup = o.Warmup(WarmUp.DefaultMostSeconds);
        var path = o.PathOverride ?? "/plaintext";
        var http2Request = new H2LoadRequest(path) { Https = true };
        IReadOnlyList<int> http1Counts = o.Connections ?? [Http1Connections];
        IReadOnlyList<int> http2Counts = o.Connections ?? [Http2Connections];
        context.CheckLoadFdLimit(http1Counts.Concat(http2Counts).Max());
        var http1WarmUp = http1Counts.Contains(Http1Connections) ? Http1Connections : http1Counts[0];
        var http2WarmUp = http2Counts.Contains(Http2Connections) ? Http2Connections : http2Counts[0];

        var result = new ScenarioResult("tls", $"HTTPS GET {path}: HTTP/1.1 (wrk) and HTTP/2 by ALPN, {H2Load.StreamsPerConnection} streams per connection (h2load)", o.Variants);
        result.Notes.Add(WarmUp.Note("wrk and h2load", warmup) + $"; each window is wrk at {http1WarmUp} connections for half of it (rounded up), then h2load at {http2WarmUp} connections for the rest, and its req/s is over both");
        result.Notes.Add($"{o.Rounds} round(s) per case, variants interleaved; each run: {WarmUp.PerRunSeconds} s warm-up with its own load (new connections; h2load's own --warm-up-time), then {o.DurationSeconds} s measured; for h2load the server's CPU is sampled when it says its main duration starts and ends; peak RSS is the server's VmHWM so far");
        result.Notes.Add($"Certificate: {SelfSignedCertificate.Description}; written without a password as {SelfSignedCertificate.FileName} into a temporary folder deleted after the scenario, and served by Kestrel from Kestrel:Certificates:Default:Path; the https endpoint keeps Kestrel's default protocols, HTTP/1.1 and HTTP/2");
        result.Notes.Add($"wrk sends HTTP/1.1 over TLS: it offers no ALPN and does not verify the certificate. h2load offers {H2Load.AlpnHttp2} and http/1.1 by ALPN and does not verify the certificate either; a run in which it did not negotiate {H2Load.AlpnHttp2} is refused. The ALPN and TLS columns are what h2load reports: the protocol, the TLS version, the cipher and the key exchange of its first connection");
        result.Notes.Add("HTTP/2 latency is h2load's mean time for request: h2load gives no percentiles, so there is no p99");

        var site = TempSite.Create();
        SelfSignedCertificate certificate;
        try
        {
            certificate = SelfSignedCertificate.Create(site.Folder);
        }
        catch
        {
            site.Dispose();
            throw;
        }

        context.AddServerCommands(result, result.Variants, SelfSignedCertificate.KestrelArgs($"<temp folder>/{SelfSignedCertificate.FileName}"), https: true);
        var cases = new List<CasePlan>();
        foreach (var c in http1Counts)
        {
            var load = Http1Load(path, c);
            result.Commands.Add(Wrk.DisplayCommand(context, load, WarmUp.PerRunSeconds) + "   # warm-up of each HTTP/1.1 run");
            result.Commands.Add(Wrk.DisplayCommand(context, load, o.DurationSeconds) + "   # measured");
            cases.Add(new CasePlan(
                new CaseResult($"HTTPS HTTP/1.1, {c} connections (wrk)", Http1Label(c), Wrk.Metrics, Wrk.Details),
                (server, variant, round) => Wrk.MeasureAsync(context, server, variant, load, round)));
        }
        foreach (var c in http2Counts)
        {
            result.Commands.Add(H2Load.DisplayCommand(context, http2Request, c, o.DurationSeconds, WarmUp.PerRunSeconds) + "   # each HTTP/2 run");
            cases.Add(new CasePlan(
                new CaseResult($"HTTPS HTTP/2 by ALPN, {c} connections × {H2Load.StreamsPerConnection} streams (h2load)", Http2Label(c), H2Load.Metrics, H2Load.Details(https: true)),
                (server, variant, round) => H2Load.MeasureAsync(context, server, variant, http2Request, c, round)));
        }

        var http1Window = WarmUp.WrkWindow(context, Http1Load(path, http1WarmUp));
        var http2Window = WarmUp.H2LoadWindow(context, http2Request, http2WarmUp);
        var plan = new ScenarioPlan
        {
            Result = result,
            Servers = [.. o.Variants.Select(v => ServerSpec.Sample(context, v, SelfSignedCertificate.KestrelArgs(certificate.PfxPath), tls: certificate))],
            WarmUp = new WarmUpPlan(warmup, $"wrk at {http1WarmUp} connections, then h2load at {http2WarmUp}", async (server, seconds) =>
            {
                // Both protocols run in every window, so that the code of each has tiered up before any is measured.
                var http1Seconds = (seconds + 1) / 2;
                var http2Seconds = Math.Max(1, seconds - http1Seconds);
                var http1Rps = await http1Window(server, http1Seconds);
                var http2Rps = await http2Window(server, http2Seconds);
                return (http1Rps * http1Seconds + http2Rps * http2Seconds) / (http1Seconds + http2Seconds);
            }),
            Cases = cases,
            SecondsPerRun = WarmUp.PerRunSeconds + o.DurationSeconds + 2,
            Finish = () => TransportTargets.Tls(Http1Label(Http1Connections), Http2Label(Http2Connections))(result),
        };
        plan.Resources.Add(site);
        return Task.FromResult(plan);
    }

    private static string Http1Label(int connections) => $"h1 c={connections}";

    private static string Http2Label(int connections) => $"h2 c={connections}";

    private static WrkLoad Http1Load(string path, int connections) => new(path, "report.lua", [], connections) { Https = true };
}
