using System.Diagnostics;
using System.Globalization;

namespace AbBench;

/// <summary>
/// rolling: nginx in front of two instances, run from deploy/'s units and nginx configuration, under steady mixed load
/// (keep-alive GETs, <c>Connection: close</c> GETs, 1 MiB uploads; three wrk through nginx). Each instance in turn is
/// restarted, 10 times in all, each restart waiting until the restarted instance answers. Two listening modes, one
/// after the other: the instance's socket inherited and held across restarts (deploy/'s way; the target is zero failed
/// or non-2xx requests), and each process binding its own SO_REUSEPORT socket on the instance's port (new process
/// first, then SIGTERM to the old), whose losses are reported.
/// </summary>
internal sealed class RollingScenario : Scenario
{
    private const int Restarts = 10;

    /// <summary>Load before the first restart, a restart every this many seconds (or as soon as the one before is done), load after the last.</summary>
    private const int LeadSeconds = 3;
    private const int IntervalSeconds = 6;
    private const int TailSeconds = 3;
    private const int WarmUpSeconds = 5;

    private const int LoadSeconds = LeadSeconds + Restarts * IntervalSeconds + TailSeconds;

    /// <summary>wrk's timeout: a request that waits in a restarting instance's backlog is slow, not failed.</summary>
    private const int WrkTimeoutSeconds = 30;

    private const int KeepAliveConnections = 32;
    private const int CloseConnections = 4;
    private const int UploadConnections = 2;

    private static readonly Variant Inherited = new("inherited", "inherited socket (systemd-socket-activate), restart = SIGTERM, the loop starts the next");
    private static readonly Variant ReusePort = new("reuseport", "--reuse-port 127.0.0.1:<port>, restart = new process first, then SIGTERM to the old");

    private static readonly Metric Requests = new("requests", "requests", Fmt.Count, HigherIsBetter: true, InRatios: false, InChart: false);
    private static readonly Metric Failed = new("failed", "failed", Fmt.Count, HigherIsBetter: false, InRatios: false, InChart: true);
    private static readonly Metric Non2xx = new("non2xx", "non-2xx", Fmt.Count, HigherIsBetter: false, InRatios: false, InChart: false);
    private static readonly Metric Retried = new("retried", "retried by nginx", Fmt.Count, HigherIsBetter: false, InRatios: false, InChart: false);
    private static readonly Metric KeepAliveP99 = new("p99ka", "keep-alive p99", Fmt.Latency, HigherIsBetter: false, InRatios: false, InChart: false);
    private static readonly Metric CloseP99 = new("p99close", "close p99", Fmt.Latency, HigherIsBetter: false, InRatios: false, InChart: false);
    private static readonly Metric UploadP99 = new("p99upload", "upload p99", Fmt.Latency, HigherIsBetter: false, InRatios: false, InChart: false);
    private static readonly Metric Slowest = new("slowest", "slowest", Fmt.Latency, HigherIsBetter: false, InRatios: false, InChart: false);

    private static readonly string[] LoadNames = ["keep-alive", "close", "upload"];

    public override string Name => "rolling";

    public override string Summary => "nginx in front of two instances run from deploy/ (units and nginx config), 10 rolling restarts under keep-alive, Connection: close and 1 MiB upload load: failed and non-2xx requests and p99, on an inherited socket (target: none) and on per-process SO_REUSEPORT sockets. Not part of all";

    public override bool InAll => false;

    public override Task<ScenarioPlan> PlanAsync(BenchContext context)
    {
        var repo = context.RepoRoot ?? throw new BenchException("rolling runs deploy/'s files: run it from the repository.");
        var deploy = DeployFiles.Read(repo);
        var nginx = NginxServer.Find() ?? throw new BenchException("rolling needs nginx (in front of the instances).");
        if (Processes.FindOnPath("systemd-socket-activate") is null)
        {
            throw new BenchException("rolling needs systemd-socket-activate (Debian: package systemd) to hold the inherited sockets.");
        }
        var threads = context.Options.LoadThreads;
        WrkLoad[] loads =
        [
            new("/plaintext", "report.lua", [], Math.Max(KeepAliveConnections, threads)) { TimeoutSeconds = WrkTimeoutSeconds },
            new("/plaintext", "report.lua", [], Math.Max(CloseConnections, threads)) { TimeoutSeconds = WrkTimeoutSeconds, Headers = ["Connection: close"] },
            new("/echo", "upload.lua", [], Math.Max(UploadConnections, threads)) { TimeoutSeconds = WrkTimeoutSeconds },
        ];
        context.CheckLoadFdLimit(loads.Sum(l => l.Connections));

        var result = new ScenarioResult("rolling", $"{Restarts} rolling restarts of {deploy.UpstreamPorts.Count} instances behind nginx, under steady mixed load", [Inherited, ReusePort]);
        var migrate = File.Exists("/proc/sys/net/ipv4/tcp_migrate_req") ? File.ReadAllText("/proc/sys/net/ipv4/tcp_migrate_req").Trim() : "n/a";
        result.Notes.Add($"Run from {DeployFiles.SocketUnit} (ListenStream={deploy.ListenStream}), {DeployFiles.ServiceUnit} (ExecStart={string.Join(' ', deploy.ExecStart)}) and {DeployFiles.NginxConf}, changed only in places: free ports for the instances instead of the upstream's {string.Join(", ", deploy.UpstreamPorts)}, the built sample instead of {DeployFiles.PublishedApp}, the sample pinned to the server CPUs, nginx listening on 127.0.0.1:<port>. Both modes use the same ports, nginx configuration and sample arguments; only how a process gets its listening socket differs");
        result.Notes.Add($"nginx: one process (master_process off, 1 worker) pinned to the client CPUs with the load; its access log gives the statuses, the requests passed to a second instance (proxy_next_upstream) and the slowest request");
        result.Notes.Add($"Per mode: the instances and nginx start, {WarmUpSeconds} s of the load warm up (not recorded), then the three wrk run {LoadSeconds} s together with a {WrkTimeoutSeconds} s timeout: GET /plaintext keep-alive at {loads[0].Connections} connections, GET /plaintext with `Connection: close` at {loads[1].Connections}, POST of 1 MiB to /echo at {loads[2].Connections}. After {LeadSeconds} s the instances are restarted in turn (1, 2, 1, ...), {Restarts} times, one every {IntervalSeconds} s or as soon as the one before is done; a restart ends when the old process has exited and the new one answers");
        result.Notes.Add("inherited: systemd-socket-activate holds each instance's listening socket (127.0.0.1:<port>), as systemd would, and runs a loop that starts the sample again whenever it exits (LISTEN_PID set to the new process); a restart is SIGTERM to the sample. reuseport: each process binds the instance's TCP port with SO_REUSEPORT (--reuse-port); a restart starts the new process, waits for its \"Application started\", then SIGTERMs the old one");
        result.Notes.Add($"failed = wrk's socket errors (connect, read, write, timeout) + nginx's 502 and 504; non-2xx = responses with a status >= 400 as wrk counts them (nginx's 502 and 504 included). p99 is wrk's, per load, over the whole load, which holds the restarts. net.ipv4.tcp_migrate_req = {migrate} (1 would move a closing SO_REUSEPORT listener's queued connections to the other)");
        result.Commands.Add(InheritedInstance.DisplayCommand(context, deploy) + "   # inherited, per instance");
        result.Commands.Add(ReusePortInstance.DisplayCommand(context, deploy) + "   # reuseport, per process");
        result.Commands.Add($"taskset -c {context.Options.ClientCpus} nginx -c <temp folder>/nginx.conf -p <temp folder>   # includes {DeployFiles.NginxConf}, changed as the notes say");
        foreach (var (load, name) in loads.Zip(LoadNames))
        {
            result.Commands.Add(Wrk.DisplayCommand(context, load, LoadSeconds) + $"   # {name}, through nginx");
        }

        var metrics = new[] { Requests, Failed, Non2xx, Retried, KeepAliveP99, CloseP99, UploadP99, Slowest };
        var details = new[] { "restarts", "restart time median (max)", "socket errors c/r/w/t", "nginx statuses", "502/504 by method", "upstream errors (nginx's error log)" };
        var measured = new CaseResult($"{Restarts} restarts under load", "restarts", metrics, details);
        var ct = context.Cancellation;

        async Task<RunOutcome> RunAsync(IServer server, Variant variant, int round)
        {
            var cluster = (RollingCluster)server;
            await Task.WhenAll(loads.Select(l => Wrk.RunAsync(context, l, cluster.Port, WarmUpSeconds, ct)));
            await Task.Delay(1500, ct); // the access log's flush
            var offset = AccessLog.Length(cluster.AccessLog);
            var errorOffset = AccessLog.Length(cluster.ErrorLog);

            var clock = Stopwatch.StartNew();
            var wrk = loads.Select(l => Wrk.RunAsync(context, l, cluster.Port, LoadSeconds, ct)).ToArray();
            var restartTimes = new List<double>();
            string? problem = null;
            try
            {
                for (var k = 0; k < Restarts; k++)
                {
                    var due = TimeSpan.FromSeconds(LeadSeconds + k * IntervalSeconds);
                    if (clock.Elapsed < due)
                    {
                        await Task.Delay(due - clock.Elapsed, ct);
                    }
                    var instance = cluster.Instances[k % cluster.Instances.Count];
                    var restart = Stopwatch.StartNew();
                    await instance.RestartAsync(ct);
                    restartTimes.Add(restart.Elapsed.TotalSeconds);
                    context.Progress.WriteLine($"  rolling {variant.Name} restart {k + 1}/{Restarts}: instance {instance.Number} in {restart.Elapsed.TotalSeconds:0.00} s");
                }
                if (clock.Elapsed.TotalSeconds > LoadSeconds - 1)
                {
                    problem = $"the restarts outlasted the load ({clock.Elapsed.TotalSeconds:0} s of {LoadSeconds} s)";
                }
            }
            catch (BenchException e)
            {
                problem = $"restart {restartTimes.Count + 1} failed: {e.Message}";
            }
            var done = await Task.WhenAll(wrk);
            await Task.Delay(1500, ct);
            var log = AccessLog.Read(cluster.AccessLog, offset);
            var upstreamErrors = AccessLog.UpstreamErrors(cluster.ErrorLog, errorOffset);
            var failedByMethod = log.GatewayErrorsByMethod.Count == 0 ? "none"
                : string.Join(", ", log.GatewayErrorsByMethod.OrderBy(m => m.Key, StringComparer.Ordinal).Select(m => $"{m.Key} {m.Value}"));

            var socketErrors = done.Sum(r => r.SocketErrors);
            var failed = socketErrors + log.GatewayErrors;
            var non2xx = done.Sum(r => r.StatusErrors);
            var times = AbBench.Summary.Of(restartTimes);
            var run = new Run(variant.Name, round, new Dictionary<string, double>
            {
                [Requests.Key] = done.Sum(r => r.Requests),
                [Failed.Key] = failed,
                [Non2xx.Key] = non2xx,
                [Retried.Key] = log.Retried,
                [KeepAliveP99.Key] = done[0].P99Us,
                [CloseP99.Key] = done[1].P99Us,
                [UploadP99.Key] = done[2].P99Us,
                [Slowest.Key] = log.SlowestUs,
            },
            [
                restartTimes.Count.ToString(CultureInfo.InvariantCulture),
                times.Count == 0 ? "n/a" : $"{times.Median:0.00} s ({times.Max:0.00} s)",
                string.Join("; ", done.Select((r, i) => $"{LoadNames[i]} {r.ErrorCounts}")),
                log.Breakdown,
                failedByMethod,
                upstreamErrors,
            ]);
            if (done.Any(r => r.Requests == 0))
            {
                problem ??= "a load completed no request";
            }
            var line = $"  rolling {variant.Name}: requests {Fmt.Count(run.Value(Requests))}  failed {failed} (socket errors {socketErrors}, 502/504 {log.GatewayErrors})  non-2xx {non2xx}  retried by nginx {log.Retried}  p99 keep-alive {Fmt.Latency(done[0].P99Us)}, close {Fmt.Latency(done[1].P99Us)}, upload {Fmt.Latency(done[2].P99Us)}  slowest {Fmt.Latency(log.SlowestUs)}  restarts {restartTimes.Count} (median {times.Median:0.00} s)  502/504 by method: {failedByMethod}  upstream errors: {upstreamErrors}";
            return new RunOutcome(run, problem, line + (problem is null ? "" : $"  <-- {problem}"));
        }

        return Task.FromResult(new ScenarioPlan
        {
            Result = result,
            Servers =
            [
                new ServerSpec(Inherited, async c => await RollingCluster.StartAsync(context, deploy, ListenMode.Inherited, nginx, c)) { WarmsUp = false },
                new ServerSpec(ReusePort, async c => await RollingCluster.StartAsync(context, deploy, ListenMode.ReusePort, nginx, c)) { WarmsUp = false },
            ],
            Lifetime = ServerLifetime.OneAtATime,
            Cases = [new CasePlan(measured, RunAsync)],
            Rounds = 1,
            SecondsPerRun = WarmUpSeconds + LoadSeconds + 15,
            Finish = () =>
            {
                var table = new Table("target", "measured", "verdict") { TextColumns = 3 };
                var runs = measured.Runs.Where(r => r.Variant == Inherited.Name).ToArray();
                if (runs.Length == 0)
                {
                    table.Add($"{Inherited.Name}: zero failed or non-2xx over {Restarts} restarts", "n/a", "n/a: no run");
                }
                else
                {
                    var failed = runs.Sum(r => r.Value(Failed));
                    var non2xx = runs.Sum(r => r.Value(Non2xx));
                    table.Add($"{Inherited.Name}: zero failed or non-2xx over {Restarts} restarts",
                        $"failed {Fmt.Count(failed)}, non-2xx {Fmt.Count(non2xx)} of {Fmt.Count(runs.Sum(r => r.Value(Requests)))} requests",
                        failed == 0 && non2xx == 0 ? "met" : "NOT met");
                }
                var reuse = measured.Runs.Where(r => r.Variant == ReusePort.Name).ToArray();
                table.Add($"{ReusePort.Name}: reported, no target",
                    reuse.Length == 0 ? "n/a" : $"failed {Fmt.Count(reuse.Sum(r => r.Value(Failed)))}, non-2xx {Fmt.Count(reuse.Sum(r => r.Value(Non2xx)))} of {Fmt.Count(reuse.Sum(r => r.Value(Requests)))} requests",
                    "—");
                result.Extra.Add(new Section("Targets", table, ["failed = socket errors + nginx 502/504; non-2xx = status >= 400 as wrk counts it."]));
            },
        });
    }
}
