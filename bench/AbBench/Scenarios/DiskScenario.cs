using System.Diagnostics;
using System.Globalization;

namespace AbBench;

/// <summary>
/// disk: the disk-bound experiment of the Flash paper (Pai, Druschel, Zwaenepoel, USENIX 1999). Two loads at once:
/// one hammers a small hot file that is always in the page cache, the other asks for random files from a cold set
/// that has just been dropped from the page cache, on a disk throttled to a slow one. A server that blocks its
/// event loop on a disk read (SPED) stalls the hot requests behind the cold ones; one that hands disk reads to
/// helpers (AMPED) keeps serving the hot file from memory; the thread pool (stock) sits in between. Then the same
/// two loads with everything cached, where the helpers must cost next to nothing.
/// </summary>
internal sealed class DiskScenario : Scenario
{
    private const int DefaultConnections = 32;
    private const int HotSize = 4 * 1024;
    private const int ColdSize = 64 * 1024;
    private const string HotFile = "hot.txt";

    /// <summary>
    /// Both loads wait up to 10 s for a response: a disk-bound server is slow, and wrk drops the latency of any
    /// response slower than its timeout, which would hide the very tail this scenario is about.
    /// </summary>
    private const int LoadTimeoutSeconds = 10;

    /// <summary>The slow disk: about a cheap spinning disk's random reads, far below what the cold load asks for.</summary>
    private const int ThrottleReadIops = 200;
    private const long ThrottleReadBytesPerSecond = 50L * 1024 * 1024;

    /// <summary>Eviction must leave less than this share of the cold set cached, and loading it more than 1 − this.</summary>
    private const double CacheTolerance = 0.01;

    private const string Amped = "amped-epoll-inline";
    private const string Sped = "sped-epoll-inline";

    private static readonly IReadOnlyList<Variant> DefaultVariants =
    [
        new("stock-sockets", "--transport sockets --static stock"),
        new(Amped, "--transport epoll --inline --static amped"),
        new(Sped, "--transport epoll --inline --static sped"),
    ];

    private static readonly Metric[] Metrics =
        [Metric.HotRps, Metric.HotP50, Metric.HotP99, Metric.ColdRps, Metric.ColdErrors, Metric.TotalRps, Metric.CpuPerRequest];

    private static readonly string[] Details =
        ["hot requests", "hot errors c/r/w/t", "cold files", "cold errors c/r/w/t", "cold set cached at start", "disk reads/s", "disk MiB/s"];

    public override string Name => "disk";

    public override string Summary => "the Flash paper's disk-bound test: a cached hot file and random files from a cold set on a throttled disk, at once (two wrk); then the same fully cached. Needs root (a cgroup v1 blkio throttle); not part of all";

    /// <summary>Not in all: it needs root, changes the machine (a blkio cgroup, the page cache) and writes hundreds of MiB.</summary>
    public override bool InAll => false;

    public override async Task<ScenarioPlan> PlanAsync(BenchContext context)
    {
        var o = context.Options;
        var ct = context.Cancellation;
        if (!Program.IsRoot())
        {
            throw new BenchException("the disk scenario must run as root: it makes a blkio cgroup to slow the disk down and moves the servers into it. Run it with sudo.");
        }
        if (new[] { "sync", "dd", "fincore", "stat" }.Where(t => Processes.FindOnPath(t) is null).ToArray() is { Length: > 0 } missing)
        {
            throw new BenchException($"{string.Join(", ", missing)} not found; the disk scenario needs coreutils (sync, dd, stat) and util-linux (fincore).", 2);
        }
        IReadOnlyList<int> connections = o.Connections ?? [DefaultConnections];
        var warmup = o.Warmup(WarmUp.DefaultMostSeconds);
        context.CheckLoadFdLimit(2 * connections.Max());
        var variants = o.VariantsOr(DefaultVariants);
        var coldFiles = Enumerable.Range(0, o.ColdFiles).Select(i => $"cold/{i.ToString("D5", CultureInfo.InvariantCulture)}.txt").ToArray();
        var coldBytes = (long)ColdSize * coldFiles.Length;

        var result = new ScenarioResult("disk",
            $"a cached {HotSize / 1024} KiB file and random files from a cold set of {coldFiles.Length:N0} × {ColdSize / 1024} KiB at once, on a disk throttled to {ThrottleReadIops} reads/s (two wrk)", variants);

        var resources = new List<IDisposable>();
        try
        {
            var site = TempSite.Create();
            resources.Add(site);
            Console.WriteLine($"Writing the cold set: {coldFiles.Length:N0} files of {ColdSize / 1024} KiB ({Fmt.MiB(coldBytes / 1024.0)}) under {site.Folder}");
            site.Write([HotFile], HotSize);
            site.Write(coldFiles, ColdSize);
            var device = await BlockDevice.OfAsync(site.Root, ct);
            var throttle = BlkioThrottle.Create(device, ThrottleReadIops, ThrottleReadBytesPerSecond);
            resources.Add(throttle);

            AddNotes(context, result, connections, warmup, coldFiles.Length, device);
            AddCommands(context, result, connections, coldFiles.Length, device);

            var maxReadsPerSecond = 0.0;
            async Task<RunOutcome> MeasureAsync(IServer server, Variant variant, int c, int round, bool diskBound)
            {
                var (outcome, readsPerSecond) = await RunOnceAsync(context, site.Root, coldFiles, throttle, server, variant, c, round, diskBound);
                if (diskBound)
                {
                    maxReadsPerSecond = Math.Max(maxReadsPerSecond, readsPerSecond);
                }
                return outcome;
            }
            var cases = new List<CasePlan>();
            foreach (var diskBound in (bool[])[true, false])
            {
                foreach (var c in connections)
                {
                    var name = diskBound ? "disk-bound" : "cached";
                    var label = o.Connections is { Count: > 1 } ? $"{name} c={c}" : name;
                    cases.Add(new CasePlan(new CaseResult(diskBound ? DiskBoundTitle(c) : CachedTitle(c), label, Metrics, Details),
                        (server, variant, round) => MeasureAsync(server, variant, c, round, diskBound))
                    {
                        // Fully cached: the cold set is read once, by the harness (not throttled), and nothing evicts it again.
                        BeforeAsync = diskBound || c != connections[0] ? null : () => LoadColdSetAsync(site.Root, coldFiles, ct),
                    });
                }
            }

            // Warmed up on the hot file alone, which is cached: the runtime tiers up at full speed, and nothing is
            // read from the disk before the servers are in the throttled group.
            var warmLoad = HotLoad(connections[0]);
            var plan = new ScenarioPlan
            {
                Result = result,
                Servers = [.. variants.Select(v => ServerSpec.Sample(context, v, ["--root", site.Root]))],
                AfterStart = (server, variant) => ContentCheck.VerifyAsync(variant.Name, server.Port, site.Root, [HotFile, coldFiles[0]], ct),
                WarmUp = new WarmUpPlan(warmup, $"hot file only at {warmLoad.Connections} connections", WarmUp.WrkWindow(context, warmLoad)),
                AfterWarmUp = server => throttle.Add(server.Pid),
                Cases = cases,
                // Per run: the warm-up, eviction and fincore (a few seconds), the measured load.
                SecondsPerRun = WarmUp.PerRunSeconds + 5 + o.DurationSeconds,
                Finish = () =>
                {
                    result.Notes.Add($"The throttle as it counted the servers' disk reads (blkio.throttle.io_serviced): at most {maxReadsPerSecond:0} reads/s in a disk-bound run, against a limit of {ThrottleReadIops}");
                    if (variants.Any(v => v.Name == Amped) && variants.Any(v => v.Name == Sped))
                    {
                        result.Extra.Add(Report.Versus(result, Sped, [Amped], $"{Amped} ÷ {Sped}, median of the per-round ratios (min–max)"));
                    }
                    result.Extra.Add(TargetsSection(result, connections));
                },
            };
            plan.Resources.AddRange(resources);
            return plan;
        }
        catch
        {
            foreach (var resource in Enumerable.Reverse(resources))
            {
                resource.Dispose();
            }
            throw;
        }
    }

    private static async Task LoadColdSetAsync(string root, string[] coldFiles, CancellationToken ct)
    {
        var coldBytes = (long)ColdSize * coldFiles.Length;
        await PageCache.LoadAsync(root, coldFiles, ct);
        var cached = await PageCache.ResidentBytesAsync(root, coldFiles, ct);
        if (cached < coldBytes * (1 - CacheTolerance))
        {
            throw new BenchException($"after reading the cold set, only {Fmt.MiB(cached / 1024.0)} of its {Fmt.MiB(coldBytes / 1024.0)} is in the page cache (fincore): too little memory for the fully cached case? Use fewer --cold-files.");
        }
    }

    private static string DiskBoundTitle(int connections) =>
        $"disk-bound: cold set dropped from the page cache before each run, {connections} + {connections} connections";

    private static string CachedTitle(int connections) =>
        $"fully cached: the same two loads with the cold set in the page cache, {connections} + {connections} connections";

    private static WrkLoad HotLoad(int connections) =>
        new($"/{HotFile}", "report.lua", [], connections) { TimeoutSeconds = LoadTimeoutSeconds, BodyBytes = HotSize };

    private static WrkLoad ColdLoad(int connections, int coldFiles) =>
        new("/", "random.lua", [coldFiles.ToString(CultureInfo.InvariantCulture)], connections) { TimeoutSeconds = LoadTimeoutSeconds, BodyBytes = ColdSize };

    /// <summary>
    /// One run: a short warm-up (disk-bound: the hot load only, since the cold one would fill the cache; cached:
    /// both), then for a disk-bound run the eviction of the cold set and its check, then both loads at once for
    /// the measured duration. Returns the run, its problem, and the throttled reads per second it saw.
    /// </summary>
    private static async Task<(RunOutcome, double)> RunOnceAsync(BenchContext context, string root, string[] coldFiles,
        BlkioThrottle throttle, IServer server, Variant variant, int connections, int round, bool diskBound)
    {
        var ct = context.Cancellation;
        var hot = HotLoad(connections);
        var cold = ColdLoad(connections, coldFiles.Length);
        WrkLoad[] warmLoads = diskBound ? [hot] : [hot, cold];
        // All warm-up loads run together; a load with no completed request fails the run.
        await Task.WhenAll(warmLoads.Select(load => WarmUp.WrkWindow(context, load)(server, WarmUp.PerRunSeconds)));

        var coldBytes = (long)ColdSize * coldFiles.Length;
        if (diskBound)
        {
            await PageCache.EvictAsync(root, coldFiles, ct);
        }
        var resident = await PageCache.ResidentBytesAsync(root, coldFiles, ct);
        if (diskBound && resident > coldBytes * CacheTolerance)
        {
            throw new BenchException($"{Fmt.MiB(resident / 1024.0)} of the cold set is still in the page cache after sync and dd iflag=nocache count=0 (fincore): cannot make the disk-bound case.");
        }
        context.Progress.WriteLine($"    cold set in the page cache at the start: {Fmt.MiB(resident / 1024.0)} of {Fmt.MiB(coldBytes / 1024.0)}");

        var readsBefore = throttle.Reads();
        var cpuBefore = server.ReadCpuTicks();
        var clock = Stopwatch.StartNew();
        var loads = await Task.WhenAll(
            Wrk.RunAsync(context, hot, server.Port, context.Options.DurationSeconds, ct),
            Wrk.RunAsync(context, cold, server.Port, context.Options.DurationSeconds, ct));
        var elapsed = clock.Elapsed.TotalSeconds;
        var cpuAfter = server.ReadCpuTicks();
        var readsAfter = throttle.Reads();
        var (h, k) = (loads[0], loads[1]);

        var reads = readsAfter.Operations - readsBefore.Operations;
        if (diskBound && k.Requests > 0 && reads == 0)
        {
            throw new BenchException($"the server served {k.Requests:N0} files of the dropped cold set, but the throttled group counted no disk read: its reads were not throttled.");
        }
        var requests = h.Requests + k.Requests;
        var cpuUs = (cpuAfter - cpuBefore) * 1e6 / context.ClockTicksPerSecond;
        var run = new Run(variant.Name, round, new Dictionary<string, double>
        {
            [Metric.HotRps.Key] = h.RequestsPerSecond,
            [Metric.HotP50.Key] = h.P50Us,
            [Metric.HotP99.Key] = h.P99Us,
            [Metric.ColdRps.Key] = k.RequestsPerSecond,
            [Metric.ColdErrors.Key] = k.SocketErrors,
            [Metric.TotalRps.Key] = h.RequestsPerSecond + k.RequestsPerSecond,
            [Metric.CpuPerRequest.Key] = requests > 0 ? cpuUs / requests : double.NaN,
        },
        [
            Fmt.Count(h.Requests), h.ErrorCounts, Fmt.Count(k.Requests), k.ErrorCounts, Fmt.MiB(resident / 1024.0),
            Fmt.Count(reads / elapsed), Fmt.Fixed2((readsAfter.Bytes - readsBefore.Bytes) / elapsed / (1024 * 1024)),
        ]);

        // Disk-bound, the slow servers are expected to time requests out: those are figures (cold errors, the
        // details), not a reason to refuse. Statuses >= 400, short bodies or no hot response at all still are.
        var problems = new[] { h.Problem(socketErrors: !diskBound), k.Problem(socketErrors: !diskBound) }
            .Select((p, i) => p is null ? null : $"{(i == 0 ? "hot" : "cold")}: {p}").OfType<string>().ToArray();
        return (new RunOutcome(run, problems.Length == 0 ? null : string.Join("; ", problems)), reads / elapsed);
    }

    private static void AddNotes(BenchContext context, ScenarioResult result, IReadOnlyList<int> connections, int warmup, int coldFiles, string device)
    {
        var o = context.Options;
        result.Notes.Add($"Files generated for the run in a temporary folder on disk {device} and deleted after it: /{HotFile} ({HotSize:N0} bytes, the hot file, never dropped from the page cache) and /cold/00000.txt ... /cold/{coldFiles - 1:D5}.txt ({coldFiles:N0} × {ColdSize:N0} bytes, the cold set), text/plain");
        result.Notes.Add($"Slow disk: a cgroup v1 blkio group {BlkioThrottle.Hierarchy}/{BlkioThrottle.GroupName} limits reads from {device} to {ThrottleReadIops} operations/s and {ThrottleReadBytesPerSecond / (1024 * 1024)} MiB/s; each server is moved into it (all its threads) after its warm-up. The harness and wrk are not in it. Removed at the end");
        result.Notes.Add(WarmUp.Note("wrk", warmup) + ", with the hot file alone as the load (cached: no disk read before the throttle)");
        result.Notes.Add($"Each run, on the same two loads at once for {o.DurationSeconds} s, both wrk on the client CPUs with --timeout {LoadTimeoutSeconds}s: {connections.Max()} connection(s) on GET /{HotFile} (hot req/s and latency) and as many on random files of the cold set (scripts/random.lua, uniform; cold files/s). total req/s = hot + cold; CPU µs/req over both");
        result.Notes.Add($"Disk-bound case, per run: {WarmUp.PerRunSeconds} s warm-up on the hot file only, then sync and `dd if=FILE iflag=nocache count=0` for every file of the cold set (posix_fadvise DONTNEED), checked with fincore (less than {CacheTolerance:P0} of the set may stay cached), then the measured loads. Socket errors (timeouts mostly) are reported, not refused; a status >= 400 or a short response is");
        result.Notes.Add($"Fully cached case, after all disk-bound runs: the harness reads the cold set once (fincore: at least {1 - CacheTolerance:P0} cached) and nothing drops it; per run {WarmUp.PerRunSeconds} s warm-up with both loads, then the measured loads; any error refuses the run");
        result.Notes.Add($"Targets: disk-bound, {Amped} hot req/s at least 20× {result.Baseline}'s, hot p99 at most 0.1× {result.Baseline}'s and 0.2× {Sped}'s, cold files/s at least {result.Baseline}'s; fully cached, {Amped} total req/s at least 0.95× {Sped}'s");
    }

    private static void AddCommands(BenchContext context, ScenarioResult result, IReadOnlyList<int> connections, int coldFiles, string device)
    {
        var o = context.Options;
        var group = $"{BlkioThrottle.Hierarchy}/{BlkioThrottle.GroupName}";
        result.Commands.Add($"mkdir {group}");
        result.Commands.Add($"echo '{device} {ThrottleReadIops}' > {group}/blkio.throttle.read_iops_device");
        result.Commands.Add($"echo '{device} {ThrottleReadBytesPerSecond}' > {group}/blkio.throttle.read_bps_device");
        context.AddServerCommands(result, result.Variants, ["--root", "<temp folder>/site"]);
        result.Commands.Add($"echo <server pid> > {group}/cgroup.procs   # each server, after its warm-up");
        foreach (var c in connections)
        {
            result.Commands.Add(PageCache.EvictCommand + ", disk-bound runs only");
            result.Commands.Add(Wrk.DisplayCommand(context, HotLoad(c), o.DurationSeconds) + "   # measured, at the same time as:");
            result.Commands.Add(Wrk.DisplayCommand(context, ColdLoad(c, coldFiles), o.DurationSeconds) + "   # measured");
        }
    }

    private static Section TargetsSection(ScenarioResult result, IReadOnlyList<int> connections)
    {
        var targets = new Targets();
        var baseline = result.Baseline;
        foreach (var c in connections)
        {
            var disk = result.Cases.FirstOrDefault(r => r.Title == DiskBoundTitle(c));
            var cached = result.Cases.FirstOrDefault(r => r.Title == CachedTitle(c));
            targets.Add($"disk-bound, c={c}: {Amped} hot req/s ≥ 20× {baseline}", disk, Amped, baseline, Metric.HotRps, 20, atLeast: true);
            targets.Add($"disk-bound, c={c}: {Amped} hot p99 ≤ 0.1× {baseline}", disk, Amped, baseline, Metric.HotP99, 0.1, atLeast: false);
            targets.Add($"disk-bound, c={c}: {Amped} cold files/s ≥ {baseline}", disk, Amped, baseline, Metric.ColdRps, 1, atLeast: true);
            targets.Add($"disk-bound, c={c}: {Amped} hot p99 ≤ 0.2× {Sped}", disk, Amped, Sped, Metric.HotP99, 0.2, atLeast: false);
            targets.Add($"fully cached, c={c}: {Amped} total req/s ≥ 0.95× {Sped}", cached, Amped, Sped, Metric.TotalRps, 0.95, atLeast: true);
        }
        return targets.ToSection($"Targets: {Amped} vs {baseline} and vs {Sped}",
            ["Judged on the median of the per-round ratios; quote none from fewer than 3 rounds."]);
    }
}
