using System.Diagnostics;
using System.Globalization;

namespace AbBench;

/// <summary>
/// soak: a long steady mixed load on one server per variant, in turn, to show that nothing leaks. Each minute three
/// wrk run together for 60 s: keep-alive GET /plaintext at 256 connections, GET of a file of the sample's own site
/// with <c>Connection: close</c> at a few connections (every request accepts and closes a connection: the churn
/// that leaks fds if anything does) and POST of 1 MiB to /echo at a couple. After each minute's load has ended and
/// its connections are closed the server's fd count, RSS, peak RSS and threads are read: with no connection open
/// the fd count must come back to the same baseline every minute, and RSS must stop growing once the runtime has
/// tiered up. Minute 1 is that warm-up; the verdict is judged from minute 2 to the last.
/// </summary>
internal sealed class SoakScenario : Scenario
{
    private const int MinuteSeconds = 60;
    private const int FirstJudgedMinute = 2;

    private const int KeepAliveConnections = 256;
    private const int CloseConnections = 8;
    private const int UploadConnections = 2;

    /// <summary>A file of the sample's real site (default root: wwwroot next to WebApp.dll), served whole per connection.</summary>
    private const string ClosePath = "/css/site.css";

    /// <summary>RSS at the last minute may be at most this much above minute 2's.</summary>
    private const double RssGrowthLimit = 0.10;

    /// <summary>
    /// The fd count after any minute may be at most this many above minute 2's: room for a file the runtime opens
    /// lazily, far below what a leak per connection gives (the churn load opens thousands of connections a minute).
    /// </summary>
    private const int FdSlack = 2;

    /// <summary>A climb across the last half (a rise at every minute of it) is judged only over at least this many minutes.</summary>
    private const int ClimbMinMinutes = 3;

    /// <summary>Connections end on the server a little after wrk exits: the fd count is read once it stops moving.</summary>
    private static readonly TimeSpan FdSettleFirst = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan FdSettleStep = TimeSpan.FromMilliseconds(250);
    private const int FdSettleMaxSteps = 20;

    private static readonly IReadOnlyList<Variant> DefaultVariants =
    [
        new("epoll-inline", "--transport epoll --inline"),
        new("epoll", "--transport epoll"),
    ];

    private static readonly Metric KeepAliveRps = new("keepalive", "keep-alive req/s", Fmt.Count, HigherIsBetter: true, InRatios: true, InChart: true, ShowRange: true);
    private static readonly Metric CloseRps = new("close", "close req/s", Fmt.Count, HigherIsBetter: true, InRatios: true, InChart: false, ShowRange: true);
    private static readonly Metric UploadRps = new("upload", "upload req/s", Fmt.Count, HigherIsBetter: true, InRatios: true, InChart: false, ShowRange: true);
    private static readonly Metric RssMetric = new("vmrss", "RSS", Fmt.MiB, HigherIsBetter: false, InRatios: true, InChart: true, ShowRange: true);
    private static readonly Metric FdsMetric = new("fds", "fds", Fmt.Count, HigherIsBetter: false, InRatios: false, InChart: false, ShowRange: true);

    private static readonly string[] LoadNames = ["keep-alive", "close", "upload"];

    public override string Name => "soak";

    public override string Summary => "--soak-minutes of steady mixed load per variant, one server at a time (keep-alive GET /plaintext, Connection: close GET /css/site.css, POST /echo; three wrk): RSS, peak RSS, fd count, threads and CPU % each minute, and whether RSS and fds stay flat. Not part of all";

    /// <summary>Not in all: it takes 20 minutes and looks for leaks rather than comparing.</summary>
    public override bool InAll => false;

    public override Task<ScenarioPlan> PlanAsync(BenchContext context)
    {
        var o = context.Options;
        var minutes = o.SoakMinutes;
        var variants = o.VariantsOr(DefaultVariants);
        var siteFile = Path.Combine(Path.GetDirectoryName(context.AppPath) ?? "", "wwwroot", ClosePath.TrimStart('/'));
        if (!File.Exists(siteFile))
        {
            throw new BenchException($"the sample's site has no {ClosePath} next to {Path.GetFileName(context.AppPath)} ({siteFile}): the soak's close load serves it.");
        }
        var loads = Loads(context, new FileInfo(siteFile).Length);
        context.CheckLoadFdLimit(loads.Sum(l => l.Connections));

        var result = new ScenarioResult("soak", $"{minutes} min of steady mixed load per variant: RSS and fd count per minute (three wrk)", variants);
        AddNotes(context, result, loads, minutes);
        context.AddServerCommands(result, variants, []);
        result.Commands.Add(Wrk.DisplayCommand(context, loads[0], MinuteSeconds) + "   # each minute, at the same time as:");
        result.Commands.Add(Wrk.DisplayCommand(context, loads[1], MinuteSeconds) + "   # and:");
        result.Commands.Add(Wrk.DisplayCommand(context, loads[2], MinuteSeconds));

        var judged = new CaseResult($"minutes {FirstJudgedMinute}–{minutes} of steady load, each minute counted as a round", $"min {FirstJudgedMinute}–{minutes}",
            [KeepAliveRps, CloseRps, UploadRps, Metric.CpuPerRequest, RssMetric, FdsMetric], ["errors", "peak RSS", "threads", "CPU %"]);
        var samples = variants.ToDictionary(v => v.Name, _ => new List<Sample>());
        var ct = context.Cancellation;

        // Minute 0: the server just started, before any load.
        async Task SampleIdleAsync(IServer server, Variant variant)
        {
            var sample = await SampleAsync(server, 0, [], cpuSeconds: 0, wallSeconds: 0, ct);
            samples[variant.Name].Add(sample);
            context.Progress.WriteLine(Line(variant, minutes, sample));
        }

        async Task<RunOutcome> MinuteAsync(IServer server, Variant variant, int minute)
        {
            var cpuBefore = server.ReadCpuTicks();
            var clock = Stopwatch.StartNew();
            var done = await Task.WhenAll(
                Wrk.RunAsync(context, loads[0], server.Port, MinuteSeconds, ct),
                Wrk.RunAsync(context, loads[1], server.Port, MinuteSeconds, ct),
                Wrk.RunAsync(context, loads[2], server.Port, MinuteSeconds, ct));
            var cpuTicks = server.ReadCpuTicks() - cpuBefore;
            var wallSeconds = clock.Elapsed.TotalSeconds;
            var sample = await SampleAsync(server, minute, done, cpuTicks / (double)context.ClockTicksPerSecond, wallSeconds, ct);
            samples[variant.Name].Add(sample);
            var problems = done.Select((r, i) => r.Problem() is { } p ? $"{LoadNames[i]}: {p}" : null).OfType<string>().ToArray();
            return new RunOutcome(minute >= FirstJudgedMinute ? sample.ToRun(variant.Name) : null,
                problems.Length == 0 ? null : string.Join("; ", problems), Line(variant, minutes, sample));
        }

        return Task.FromResult(new ScenarioPlan
        {
            Result = result,
            Servers = [.. variants.Select(v => ServerSpec.Sample(context, v, []))],
            Lifetime = ServerLifetime.OneAtATime,
            AfterStart = SampleIdleAsync,
            Cases = [new CasePlan(judged, MinuteAsync) { RoundName = "minute" }],
            Rounds = minutes,
            SecondsPerRun = MinuteSeconds + 2,
            Finish = () =>
            {
                if (minutes < FirstJudgedMinute)
                {
                    result.Cases.Remove(judged);
                }
                var verdicts = new Table("variant", "fds after each minute", "RSS", "climb across the last half", "verdict") { TextColumns = 5 };
                foreach (var variant in variants)
                {
                    result.Extra.Add(new Section($"soak {variant.Name}: per minute, sampled after the minute's load ended and its connections closed", MinuteTable(samples[variant.Name]), []));
                    verdicts.Add([variant.Name, .. Judge(samples[variant.Name])]);
                }
                result.Extra.Add(new Section($"Verdict: flat from minute {FirstJudgedMinute} to the last", verdicts,
                [
                    $"Flat: the fd count after every minute at most {FdSlack} above minute {FirstJudgedMinute}'s; RSS at the last minute at most {Percent(RssGrowthLimit)} above minute {FirstJudgedMinute}'s; and neither rises at every minute of the last half of minutes {FirstJudgedMinute}–{minutes} (judged when that half holds {ClimbMinMinutes} minutes or more).",
                    "Minute 1 is the warm-up (the runtime tiers its code up, pools fill); minute 0 is the server just started, before any load.",
                ]));
            },
        });
    }

    /// <summary>The three loads of every minute: keep-alive, close (connection churn) and upload.</summary>
    private static WrkLoad[] Loads(BenchContext context, long siteFileBytes)
    {
        // wrk needs at least one connection per thread.
        var threads = context.Options.LoadThreads;
        return
        [
            new("/plaintext", "report.lua", [], Math.Max(KeepAliveConnections, threads)),
            new(ClosePath, "report.lua", [], Math.Max(CloseConnections, threads)) { BodyBytes = siteFileBytes, Headers = ["Connection: close"] },
            new("/echo", "upload.lua", [], Math.Max(UploadConnections, threads)),
        ];
    }

    private static void AddNotes(BenchContext context, ScenarioResult result, WrkLoad[] loads, int minutes)
    {
        result.Notes.Add($"One server per variant, in turn, not interleaved: started (minute 0 sampled), {minutes} minute(s) of load, stopped; then the next variant's. No warm-up but minute 1; --rounds, --duration, --warmup and --connections do not apply");
        result.Notes.Add($"Each minute three wrk start together, each for {MinuteSeconds} s on the client CPUs with report.lua's counts: GET /plaintext keep-alive at {loads[0].Connections} connections; GET {ClosePath} of the sample's own site with `Connection: close` at {loads[1].Connections} connections (each request accepts and closes one connection; every response must carry at least the file's {loads[1].BodyBytes:N0} bytes); POST of 1 MiB to /echo (upload.lua) at {loads[2].Connections} connections. Any socket error or status >= 400 refuses the scenario");
        result.Notes.Add("After each minute's load has ended: the server's fd count (entries of /proc/PID/fd), read once it has not moved for 250 ms (the server closes the connections a little after wrk exits), then VmRSS, VmHWM (peak RSS) and Threads from /proc/PID/status. CPU % is the server's utime + stime over the minute's wall time, in % of one CPU; CPU µs/req is over the requests of all three loads");
        result.Notes.Add($"The standard tables use minutes {FirstJudgedMinute}–{minutes}, each minute as a round: a ratio compares the same minute of two variants' runs, which ran one after the other");
    }

    /// <summary>The server's figures once the minute's connections are closed: fds first, then /proc/PID/status.</summary>
    private static async Task<Sample> SampleAsync(IServer server, int minute, WrkResult[] loads, double cpuSeconds, double wallSeconds, CancellationToken ct)
    {
        var fds = await SettledFdCountAsync(server, ct);
        return new Sample(minute, loads, cpuSeconds, wallSeconds,
            server.ReadStatusKiB("VmRSS"), server.ReadStatusKiB("VmHWM"), fds,
            // A count, not kB: the same first figure after the field's name.
            (int)server.ReadStatusKiB("Threads"));
    }

    /// <summary>The fd count once two readings <see cref="FdSettleStep"/> apart agree (or after 6 s, whatever it is then).</summary>
    private static async Task<int> SettledFdCountAsync(IServer server, CancellationToken ct)
    {
        await Task.Delay(FdSettleFirst, ct);
        var count = FdCount(server.Pid);
        for (var step = 0; step < FdSettleMaxSteps; step++)
        {
            await Task.Delay(FdSettleStep, ct);
            var next = FdCount(server.Pid);
            if (next == count)
            {
                break;
            }
            count = next;
        }
        return count;
    }

    private static int FdCount(int pid)
    {
        try
        {
            return Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd").Count();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BenchException($"cannot list the server's open files (/proc/{pid}/fd): {e.Message}");
        }
    }

    private static string Line(Variant variant, int minutes, Sample s)
    {
        var load = s.Loads.Length == 0 ? "no load yet"
            : string.Join("  ", s.Loads.Select((r, i) => $"{LoadNames[i]} {Fmt.Count(r.RequestsPerSecond)} req/s")) + $"  errors {Fmt.Count(s.Errors)}";
        var cpu = s.Loads.Length == 0 ? "" : $"  CPU {s.CpuPercent:0}%";
        return $"  soak {variant.Name} minute {s.Number}/{minutes}  {load}  RSS {Fmt.MiB(s.RssKiB)}  peak {Fmt.MiB(s.PeakRssKiB)}  fds {s.Fds}  threads {s.Threads}{cpu}";
    }

    private static Table MinuteTable(IEnumerable<Sample> samples)
    {
        var table = new Table("minute", "keep-alive req/s", "close req/s", "upload req/s", "errors", "RSS", "peak RSS", "fds", "threads", "CPU %");
        foreach (var s in samples)
        {
            string[] load = s.Loads.Length == 0
                ? ["—", "—", "—", "—"]
                : [.. s.Loads.Select(r => Fmt.Count(r.RequestsPerSecond)), Fmt.Count(s.Errors)];
            table.Add([s.Number.ToString(CultureInfo.InvariantCulture), .. load, Fmt.MiB(s.RssKiB), Fmt.MiB(s.PeakRssKiB),
                s.Fds.ToString(CultureInfo.InvariantCulture), s.Threads.ToString(CultureInfo.InvariantCulture),
                s.Loads.Length == 0 ? "—" : s.CpuPercent.ToString("0", CultureInfo.InvariantCulture)]);
        }
        return table;
    }

    /// <summary>The verdict row's cells after the variant: fds, RSS, climb, verdict.</summary>
    private static string[] Judge(IReadOnlyList<Sample> samples)
    {
        var judged = samples.Where(s => s.Number >= FirstJudgedMinute).ToArray();
        if (judged.Length < 2)
        {
            return ["n/a", "n/a", "n/a", $"n/a: needs --soak-minutes {FirstJudgedMinute + 1} or more (minute 1 is the warm-up)"];
        }
        var (first, last) = (judged[0], judged[^1]);
        var fdRise = judged.Max(s => s.Fds) - first.Fds;
        var rssGrowth = (last.RssKiB - first.RssKiB) / (double)first.RssKiB;
        var half = judged[(judged.Length / 2)..];
        var climbs = new List<string>();
        if (half.Length >= ClimbMinMinutes)
        {
            if (RisesEveryMinute(half.Select(s => (double)s.Fds)))
            {
                climbs.Add("fds");
            }
            if (RisesEveryMinute(half.Select(s => (double)s.RssKiB)))
            {
                climbs.Add("RSS");
            }
        }

        var failures = new List<string>();
        if (fdRise > FdSlack)
        {
            failures.Add($"fds up to +{fdRise} (> +{FdSlack})");
        }
        if (rssGrowth > RssGrowthLimit)
        {
            failures.Add($"RSS {SignedPercent(rssGrowth)} (> {Percent(RssGrowthLimit)})");
        }
        failures.AddRange(climbs.Select(c => $"{c} rose at every minute from {half[0].Number} to {last.Number}"));
        return
        [
            $"{first.Fds} at minute {first.Number}, {last.Fds} at {last.Number}, most {first.Fds + fdRise}",
            $"{Fmt.MiB(first.RssKiB)} → {Fmt.MiB(last.RssKiB)} ({SignedPercent(rssGrowth)})",
            half.Length < ClimbMinMinutes ? $"not judged (fewer than {ClimbMinMinutes} minutes)" : climbs.Count == 0 ? $"none (minutes {half[0].Number}–{last.Number})" : string.Join(", ", climbs),
            failures.Count == 0 ? "flat" : "NOT flat: " + string.Join("; ", failures),
        ];
    }

    private static string Percent(double share) => (share * 100).ToString("0", CultureInfo.InvariantCulture) + "%";

    private static string SignedPercent(double share) => (share * 100).ToString("+0.0;-0.0;0.0", CultureInfo.InvariantCulture) + "%";

    private static bool RisesEveryMinute(IEnumerable<double> values) =>
        values.Zip(values.Skip(1), (before, after) => after > before).All(rose => rose);

    /// <summary>
    /// One minute of a variant's soak (minute 0: the server just started, no load): the loads' results, the
    /// server's CPU seconds over the minute's wall time, and what /proc showed after the load.
    /// </summary>
    private sealed record Sample(int Number, WrkResult[] Loads, double CpuSeconds, double WallSeconds, long RssKiB, long PeakRssKiB, int Fds, int Threads)
    {
        public long Errors => Loads.Sum(r => r.SocketErrors + r.StatusErrors);

        public double CpuPercent => WallSeconds > 0 ? CpuSeconds / WallSeconds * 100 : double.NaN;

        public Run ToRun(string variant)
        {
            var requests = Loads.Sum(r => r.Requests);
            return new Run(variant, Number, new Dictionary<string, double>
            {
                [KeepAliveRps.Key] = Loads[0].RequestsPerSecond,
                [CloseRps.Key] = Loads[1].RequestsPerSecond,
                [UploadRps.Key] = Loads[2].RequestsPerSecond,
                [Metric.CpuPerRequest.Key] = requests > 0 ? CpuSeconds * 1e6 / requests : double.NaN,
                [RssMetric.Key] = RssKiB,
                [FdsMetric.Key] = Fds,
            }, [Fmt.Count(Errors), Fmt.MiB(PeakRssKiB), Threads.ToString(CultureInfo.InvariantCulture), CpuPercent.ToString("0", CultureInfo.InvariantCulture)]);
        }
    }
}
