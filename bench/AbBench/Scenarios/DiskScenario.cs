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
internal static class DiskScenario
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

    public static async Task<ScenarioResult> RunAsync(BenchContext context)
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
        var warmup = o.Warmup(Scenarios.DefaultWarmupSeconds);
        Scenarios.CheckLoadFdLimit(context, 2 * connections.Max());
        var variants = o.VariantsGiven ? o.Variants : DefaultVariants;
        var coldFiles = Enumerable.Range(0, o.ColdFiles).Select(i => $"cold/{i.ToString("D5", CultureInfo.InvariantCulture)}.txt").ToArray();
        var coldBytes = (long)ColdSize * coldFiles.Length;

        var result = new ScenarioResult("disk",
            $"a cached {HotSize / 1024} KiB file and random files from a cold set of {coldFiles.Length:N0} × {ColdSize / 1024} KiB at once, on a disk throttled to {ThrottleReadIops} reads/s (two wrk)", variants);

        using var site = TempSite.Create();
        Console.WriteLine($"Writing the cold set: {coldFiles.Length:N0} files of {ColdSize / 1024} KiB ({Fmt.MiB(coldBytes / 1024.0)}) under {site.Folder}");
        site.Write([HotFile], HotSize);
        site.Write(coldFiles, ColdSize);
        var device = await BlockDevice.OfAsync(site.Root, ct);
        using var throttle = BlkioThrottle.Create(device, ThrottleReadIops, ThrottleReadBytesPerSecond);

        AddNotes(context, result, connections, warmup, coldFiles.Length, device);
        AddCommands(context, result, connections, coldFiles.Length, device);
        var runs = connections.Count * 2 * o.Rounds * variants.Count;
        // Per run: the warm-up, eviction and fincore (a few seconds), the measured load.
        Scenarios.PrintPlan(context, result, runs, Scenarios.RunWarmupSeconds + 5 + o.DurationSeconds + variants.Count * Math.Min(warmup, 30) / runs);

        var refusals = new Refusals(o.KeepGoing);
        var servers = new List<ServerProcess>();
        try
        {
            foreach (var variant in variants)
            {
                var server = await Scenarios.Labelled($"disk {variant.Name} start",
                    () => ServerProcess.StartAsync(context, [.. variant.ArgList, "--root", site.Root], http2: false, ct));
                servers.Add(server);
                result.StartupLines.TryAdd(variant.Name, server.StartupLine ?? "n/a");
                await Scenarios.Labelled($"disk {variant.Name} content check", async () =>
                {
                    await ContentCheck.VerifyAsync(variant.Name, server.Port, site.Root, [HotFile, coldFiles[0]], ct);
                    return true;
                });
            }

            // Warmed up on the hot file alone, which is cached: the runtime tiers up at full speed, and nothing is
            // read from the disk before the servers are in the throttled group.
            var warmLoad = HotLoad(connections[0]);
            var warmups = new List<string>();
            for (var i = 0; i < servers.Count; i++)
            {
                var label = $"disk {variants[i].Name} warm-up";
                var seconds = await Scenarios.Labelled(label, () => Scenarios.WarmUpUntilSteadyAsync(context, servers[i], warmLoad, warmup));
                Console.WriteLine($"  {label}: {seconds} s");
                warmups.Add($"{variants[i].Name} {seconds} s");
                throttle.Add(servers[i].Pid);
            }
            result.Notes.Add($"Warm-up until steady, hot file only at {warmLoad.Connections} connections: {string.Join(", ", warmups)}");

            var maxReadsPerSecond = 0.0;
            foreach (var c in connections)
            {
                maxReadsPerSecond = Math.Max(maxReadsPerSecond,
                    await RunCaseAsync(context, result, refusals, site.Root, coldFiles, throttle, servers, c, diskBound: true));
            }
            result.Notes.Add($"The throttle as it counted the servers' disk reads (blkio.throttle.io_serviced): at most {maxReadsPerSecond:0} reads/s in a disk-bound run, against a limit of {ThrottleReadIops}");

            // Fully cached: the cold set is read once, by the harness (not throttled), and nothing evicts it again.
            await PageCache.LoadAsync(site.Root, coldFiles, ct);
            var cached = await PageCache.ResidentBytesAsync(site.Root, coldFiles, ct);
            if (cached < coldBytes * (1 - CacheTolerance))
            {
                throw new BenchException($"after reading the cold set, only {Fmt.MiB(cached / 1024.0)} of its {Fmt.MiB(coldBytes / 1024.0)} is in the page cache (fincore): too little memory for the fully cached case? Use fewer --cold-files.");
            }
            foreach (var c in connections)
            {
                await RunCaseAsync(context, result, refusals, site.Root, coldFiles, throttle, servers, c, diskBound: false);
            }
        }
        finally
        {
            foreach (var server in servers)
            {
                await server.DisposeAsync();
            }
        }
        refusals.ThrowIfAny();

        if (variants.Any(v => v.Name == Amped) && variants.Any(v => v.Name == Sped))
        {
            result.Extra.Add(Report.Versus(result, Sped, [Amped], $"{Amped} ÷ {Sped}, median of the per-round ratios (min–max)"));
        }
        result.Extra.Add(TargetsSection(result, connections));
        return result;
    }

    /// <summary>
    /// One sub-result, disk-bound or fully cached, at one connection count: its rounds, variants interleaved.
    /// Returns the most throttled reads per second a run saw.
    /// </summary>
    private static async Task<double> RunCaseAsync(BenchContext context, ScenarioResult result, Refusals refusals, string root,
        string[] coldFiles, BlkioThrottle throttle, IReadOnlyList<ServerProcess> servers, int connections, bool diskBound)
    {
        var o = context.Options;
        var name = diskBound ? "disk-bound" : "cached";
        var label = o.Connections is { Count: > 1 } ? $"{name} c={connections}" : name;
        var results = new CaseResult(diskBound ? DiskBoundTitle(connections) : CachedTitle(connections), label, Metrics, Details);
        result.Cases.Add(results);
        var maxReadsPerSecond = 0.0;
        for (var round = 1; round <= o.Rounds; round++)
        {
            for (var i = 0; i < servers.Count; i++)
            {
                var (server, variant) = (servers[i], result.Variants[i]);
                var runLabel = $"disk {label} round {round}/{o.Rounds} {variant.Name}";
                var (run, problem, readsPerSecond) = await Scenarios.Labelled(runLabel,
                    () => RunOnceAsync(context, root, coldFiles, throttle, server, variant, connections, round, diskBound));
                maxReadsPerSecond = Math.Max(maxReadsPerSecond, readsPerSecond);
                results.Runs.Add(run);
                Scenarios.PrintRun(runLabel, results, run, problem);
                refusals.Check(runLabel, problem);
            }
        }
        return maxReadsPerSecond;
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
    private static async Task<(Run, string?, double)> RunOnceAsync(BenchContext context, string root, string[] coldFiles,
        BlkioThrottle throttle, ServerProcess server, Variant variant, int connections, int round, bool diskBound)
    {
        var ct = context.Cancellation;
        var hot = HotLoad(connections);
        var cold = ColdLoad(connections, coldFiles.Length);
        WrkLoad[] warmLoads = diskBound ? [hot] : [hot, cold];
        var warm = await Task.WhenAll(warmLoads.Select(load => Wrk.RunAsync(context, load, server.Port, Scenarios.RunWarmupSeconds, ct)));
        if (warm.FirstOrDefault(w => w.Requests == 0) is { } failed)
        {
            throw new BenchException($"the warm-up failed completely: {failed.Problem()}");
        }

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
        Console.WriteLine($"    cold set in the page cache at the start: {Fmt.MiB(resident / 1024.0)} of {Fmt.MiB(coldBytes / 1024.0)}");

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
            Fmt.Count(h.Requests), Errors(h), Fmt.Count(k.Requests), Errors(k), Fmt.MiB(resident / 1024.0),
            Fmt.Count(reads / elapsed), Fmt.Fixed2((readsAfter.Bytes - readsBefore.Bytes) / elapsed / (1024 * 1024)),
        ]);

        // Disk-bound, the slow servers are expected to time requests out: those are figures (cold errors, the
        // details), not a reason to refuse. Statuses >= 400, short bodies or no hot response at all still are.
        var problems = new[] { h.Problem(socketErrors: !diskBound), k.Problem(socketErrors: !diskBound) }
            .Select((p, i) => p is null ? null : $"{(i == 0 ? "hot" : "cold")}: {p}").OfType<string>().ToArray();
        return (run, problems.Length == 0 ? null : string.Join("; ", problems), reads / elapsed);
    }

    private static string Errors(WrkResult r) => $"{r.ConnectErrors}/{r.ReadErrors}/{r.WriteErrors}/{r.TimeoutErrors}";

    private static void AddNotes(BenchContext context, ScenarioResult result, IReadOnlyList<int> connections, int warmup, int coldFiles, string device)
    {
        var o = context.Options;
        result.Notes.Add($"Files generated for the run in a temporary folder on disk {device} and deleted after it: /{HotFile} ({HotSize:N0} bytes, the hot file, never dropped from the page cache) and /cold/00000.txt ... /cold/{coldFiles - 1:D5}.txt ({coldFiles:N0} × {ColdSize:N0} bytes, the cold set), text/plain");
        result.Notes.Add($"Slow disk: a cgroup v1 blkio group {BlkioThrottle.Hierarchy}/{BlkioThrottle.GroupName} limits reads from {device} to {ThrottleReadIops} operations/s and {ThrottleReadBytesPerSecond / (1024 * 1024)} MiB/s; each server is moved into it (all its threads) after its warm-up. The harness and wrk are not in it. Removed at the end");
        result.Notes.Add(Scenarios.WarmupNote("wrk", warmup) + ", with the hot file alone as the load (cached: no disk read before the throttle)");
        result.Notes.Add($"Each run, on the same two loads at once for {o.DurationSeconds} s, both wrk on the client CPUs with --timeout {LoadTimeoutSeconds}s: {connections.Max()} connection(s) on GET /{HotFile} (hot req/s and latency) and as many on random files of the cold set (scripts/random.lua, uniform; cold files/s). total req/s = hot + cold; CPU µs/req over both");
        result.Notes.Add($"Disk-bound case, per run: {Scenarios.RunWarmupSeconds} s warm-up on the hot file only, then sync and `dd if=FILE iflag=nocache count=0` for every file of the cold set (posix_fadvise DONTNEED), checked with fincore (less than {CacheTolerance:P0} of the set may stay cached), then the measured loads. Socket errors (timeouts mostly) are reported, not refused; a status >= 400 or a short response is");
        result.Notes.Add($"Fully cached case, after all disk-bound runs: the harness reads the cold set once (fincore: at least {1 - CacheTolerance:P0} cached) and nothing drops it; per run {Scenarios.RunWarmupSeconds} s warm-up with both loads, then the measured loads; any error refuses the run");
        result.Notes.Add($"Targets: disk-bound, {Amped} hot req/s at least 20× {result.Baseline}'s, hot p99 at most 0.1× {result.Baseline}'s and 0.2× {Sped}'s, cold files/s at least {result.Baseline}'s; fully cached, {Amped} total req/s at least 0.95× {Sped}'s");
    }

    private static void AddCommands(BenchContext context, ScenarioResult result, IReadOnlyList<int> connections, int coldFiles, string device)
    {
        var o = context.Options;
        var group = $"{BlkioThrottle.Hierarchy}/{BlkioThrottle.GroupName}";
        result.Commands.Add($"mkdir {group}");
        result.Commands.Add($"echo '{device} {ThrottleReadIops}' > {group}/blkio.throttle.read_iops_device");
        result.Commands.Add($"echo '{device} {ThrottleReadBytesPerSecond}' > {group}/blkio.throttle.read_bps_device");
        Scenarios.AddServerCommands(context, result, result.Variants, ["--root", "<temp folder>/site"]);
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
