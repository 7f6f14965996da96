namespace AbBench;

/// <summary>
/// static: GET of one static file at a time, 1 KiB, 64 KiB and 1 MiB, from a folder the harness generates.
/// By default stock UseStaticFiles on the Sockets transport (the baseline) against UseAmpedStaticFiles on the
/// epoll transport with inline scheduling and with default scheduling, stock UseStaticFiles on the epoll transport
/// (whose SendFileAsync goes by sendfile), and nginx as a reference for what one core can serve: the targets are
/// stated against the baseline and nginx. Same method as the other wrk scenarios: one server per variant, warmed up until steady,
/// rounds interleaved, each run a short warm-up and the measured load.
/// </summary>
internal sealed class StaticScenario : Scenario
{
    private const int DefaultConnections = 64;
    private const string Amped = "amped-epoll-inline";
    private const string AmpedDefault = "amped-epoll";
    private const string StockEpoll = "stock-epoll";

    /// <summary>The served files: names without precompressed siblings, an extension every server maps to text/plain.</summary>
    private static readonly (string Label, string File, int Size)[] Files =
    [
        ("1 KiB", "1kib.txt", 1024),
        ("64 KiB", "64kib.txt", 64 * 1024),
        ("1 MiB", "1mib.txt", 1024 * 1024),
    ];

    /// <summary>The targets: amped req/s ÷ stock req/s at least this, per file size.</summary>
    private static readonly Dictionary<string, double> VersusStock = new() { ["1 KiB"] = 3.5, ["64 KiB"] = 3, ["1 MiB"] = 2.5 };

    /// <summary>And amped req/s ÷ nginx req/s at least 0.6, for the 1 KiB file.</summary>
    private const double VersusNginxAt1KiB = 0.6;

    /// <summary>And at least 0.8 of nginx's req/s, for the 1 MiB file, with CPU per response within 2× nginx's.</summary>
    private const double VersusNginxAt1MiB = 0.8;
    private const double CpuVersusNginxAt1MiB = 2;

    /// <summary>And stock UseStaticFiles on epoll (zero-copy SendFileAsync) ÷ on Sockets at least 2, for the 1 MiB file.</summary>
    private const double StockEpollAt1MiB = 2;

    private static readonly IReadOnlyList<Variant> DefaultVariants =
    [
        new("stock-sockets", "--transport sockets --static stock"),
        new(Amped, "--transport epoll --inline --static amped"),
        new(AmpedDefault, "--transport epoll --static amped"),
        new(StockEpoll, "--transport epoll --static stock"),
    ];

    public override string Name => "static";

    public override string Summary => "static files of 1 KiB, 64 KiB and 1 MiB, 64 connections (wrk): stock UseStaticFiles on Sockets vs UseAmpedStaticFiles on epoll (inline and default scheduling) and UseStaticFiles on epoll, with nginx as a reference";

    public override async Task<ScenarioPlan> PlanAsync(BenchContext context)
    {
        var o = context.Options;
        var ct = context.Cancellation;
        IReadOnlyList<int> connections = o.Connections ?? [DefaultConnections];
        var warmup = o.Warmup(WarmUp.DefaultMostSeconds);
        context.CheckLoadFdLimit(connections.Max());

        var dotnetVariants = o.VariantsOr(DefaultVariants);
        if (dotnetVariants.Any(v => v.Name == NginxServer.VariantName))
        {
            throw new BenchException($"the variant name '{NginxServer.VariantName}' is the static scenario's reference server; name yours otherwise.", 2);
        }
        var nginx = NginxServer.Find();
        if (nginx is null)
        {
            Console.WriteLine("Note: nginx is not installed (no /usr/sbin/nginx, none on PATH): the static scenario runs without its nginx reference. Install it with: apt-get install -y nginx");
        }
        IReadOnlyList<Variant> variants = nginx is null ? dotnetVariants : [.. dotnetVariants, NginxServer.Variant];

        var result = new ScenarioResult("static", "GET of a static file of 1 KiB, 64 KiB or 1 MiB, HTTP/1.1 keep-alive (wrk)", variants);
        result.Notes.Add(WarmUp.Note("wrk", warmup) + $", with the 1 KiB file as the load; nginx, which has no JIT, gets only the per-run warm-up");
        result.Notes.Add($"{o.Rounds} round(s) per file size, variants interleaved; each run: {WarmUp.PerRunSeconds} s warm-up with its own load (not recorded), then {o.DurationSeconds} s measured; peak RSS is the server's VmHWM so far");
        result.Notes.Add($"wrk threads: {o.LoadThreads}; connection counts: {string.Join(", ", connections)}");
        result.Notes.Add($"Files generated for the run in a temporary folder and deleted after it: {string.Join(", ", Files.Select(f => $"/{f.File} ({f.Size:N0} bytes)"))}, text/plain. Before any load every server must answer each with 200, text/plain and the exact bytes; in every run each response must have carried at least the file's size (wrk's bytes read ÷ responses)");
        result.Notes.Add(nginx is null
            ? "nginx was not installed: no reference figures"
            : $"nginx: {await NginxServer.VersionAsync(nginx, ct)}, one process (master_process off), sendfile on, access_log off, keepalive_requests 1000000, pinned like the .NET servers; its CPU time is that process's");
        result.Notes.Add($"Targets: {Amped} req/s at least {VersusStock["1 KiB"]}× {result.Baseline}'s for the 1 KiB file, {VersusStock["64 KiB"]}× for the 64 KiB file and {VersusStock["1 MiB"]}× for the 1 MiB file; at least {VersusNginxAt1KiB}× nginx's for the 1 KiB file and {VersusNginxAt1MiB}× for the 1 MiB file, with CPU µs/req at most {CpuVersusNginxAt1MiB}× nginx's; {StockEpoll} req/s at least {StockEpollAt1MiB}× {result.Baseline}'s for the 1 MiB file (where a variant is not run, its targets are skipped)");

        var site = TempSite.Create();
        try
        {
            foreach (var f in Files)
            {
                site.Write([f.File], f.Size);
            }
        }
        catch
        {
            site.Dispose();
            throw;
        }

        string[] rootArgs = ["--root", site.Root];
        context.AddServerCommands(result, dotnetVariants, ["--root", "<temp folder>/site"]);
        if (nginx is not null)
        {
            result.Commands.Add(NginxServer.DisplayCommand(o.ServerCpus, NginxServer.VariantName));
            result.Commands.AddRange(NginxServer.StaticConfig("<temp folder>", "<temp folder>/site", 0, connections.Max() * 2 + 64)
                .Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => "#     " + line.Replace("listen 127.0.0.1:0", "listen 127.0.0.1:<port>", StringComparison.Ordinal)));
        }
        var cases = new List<CasePlan>();
        foreach (var c in connections)
        {
            foreach (var f in Files)
            {
                var load = Load(f, c);
                result.Commands.Add(Wrk.DisplayCommand(context, load, WarmUp.PerRunSeconds) + "   # warm-up of each run");
                result.Commands.Add(Wrk.DisplayCommand(context, load, o.DurationSeconds) + "   # measured");
                var label = connections.Count == 1 ? f.Label : $"{f.Label} c={c}";
                cases.Add(new CasePlan(
                    new CaseResult(Title(f, c), label, Wrk.Metrics, Wrk.Details),
                    (server, variant, round) => Wrk.MeasureAsync(context, server, variant, load, round)));
            }
        }

        // In the order of the variants: the .NET servers, then nginx.
        var servers = dotnetVariants.Select(v => ServerSpec.Sample(context, v, rootArgs)).ToList();
        if (nginx is not null)
        {
            servers.Add(new ServerSpec(NginxServer.Variant, async token => await NginxServer.StartAsync(context, nginx, site.Folder, site.Root, connections.Max(), token))
            {
                WarmsUp = false,
            });
        }
        var warmLoad = Load(Files[0], connections.Contains(DefaultConnections) ? DefaultConnections : connections[0]);
        var plan = new ScenarioPlan
        {
            Result = result,
            Servers = servers,
            AfterStart = (server, variant) => ContentCheck.VerifyAsync(variant.Name, server.Port, site.Root, Files.Select(f => f.File), ct),
            WarmUp = new WarmUpPlan(warmup, $"1 KiB file at {warmLoad.Connections} connections", WarmUp.WrkWindow(context, warmLoad)),
            Cases = cases,
            SecondsPerRun = WarmUp.PerRunSeconds + o.DurationSeconds + 1,
            Finish = () =>
            {
                if (nginx is not null)
                {
                    result.Extra.Add(Report.Versus(result, NginxServer.VariantName, dotnetVariants.Select(v => v.Name),
                        "vs nginx: each .NET variant ÷ nginx, median of the per-round ratios (min–max)"));
                }
                result.Extra.Add(TargetsSection(result, connections));
            },
        };
        plan.Resources.Add(site);
        return plan;
    }

    private static string Title((string Label, string File, int Size) file, int connections) => $"{file.Label} file, {connections} connections";

    private static WrkLoad Load((string Label, string File, int Size) file, int connections) =>
        new($"/{file.File}", "report.lua", [], connections) { BodyBytes = file.Size };

    private static Section TargetsSection(ScenarioResult result, IReadOnlyList<int> connections)
    {
        var targets = new Targets();
        foreach (var c in connections)
        {
            foreach (var f in Files)
            {
                var results = result.Cases.FirstOrDefault(r => r.Title == Title(f, c));
                targets.Add($"{f.Label}, c={c}: {Amped} req/s ≥ {VersusStock[f.Label]}× {result.Baseline}", results, Amped, result.Baseline, Metric.Rps, VersusStock[f.Label], atLeast: true);
            }
            var smallest = result.Cases.FirstOrDefault(r => r.Title == Title(Files[0], c));
            targets.Add($"{Files[0].Label}, c={c}: {Amped} req/s ≥ {VersusNginxAt1KiB}× nginx", smallest, Amped, NginxServer.VariantName, Metric.Rps, VersusNginxAt1KiB, atLeast: true);
            var largest = result.Cases.FirstOrDefault(r => r.Title == Title(Files[^1], c));
            targets.Add($"{Files[^1].Label}, c={c}: {Amped} req/s ≥ {VersusNginxAt1MiB}× nginx", largest, Amped, NginxServer.VariantName, Metric.Rps, VersusNginxAt1MiB, atLeast: true);
            targets.Add($"{Files[^1].Label}, c={c}: {Amped} CPU µs/req ≤ {CpuVersusNginxAt1MiB}× nginx", largest, Amped, NginxServer.VariantName, Metric.CpuPerRequest, CpuVersusNginxAt1MiB, atLeast: false);
            targets.Add($"{Files[^1].Label}, c={c}: {StockEpoll} req/s ≥ {StockEpollAt1MiB}× {result.Baseline}", largest, StockEpoll, result.Baseline, Metric.Rps, StockEpollAt1MiB, atLeast: true);
        }
        return targets.ToSection($"Targets: {Amped} req/s vs {result.Baseline} and vs nginx",
            ["Judged on the median of the per-round ratios of req/s; quote none from fewer than 3 rounds."]);
    }
}
