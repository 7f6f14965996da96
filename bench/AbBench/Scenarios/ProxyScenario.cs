using System.Net;
using System.Text;

namespace AbBench;

/// <summary>
/// proxy: the sample as it is often deployed, behind nginx. One nginx process (one worker, no access log) runs pinned
/// to the client CPUs beside wrk and reaches each variant's sample two ways, each a route of its own: over a Unix
/// socket and over TCP loopback, both with keep-alive upstream connections (HTTP/1.1, an empty Connection header,
/// <c>keepalive</c> in the upstream). wrk loads one route at a time, GET /plaintext; the measured server is the
/// sample, which listens on 127.0.0.1 (the harness's readiness check and counters) and on its Unix socket. Same
/// method as the other wrk scenarios: one sample per variant, warmed up until steady (through nginx), rounds
/// interleaved; nginx's own CPU per request is reported beside the sample's.
/// </summary>
internal sealed class ProxyScenario : Scenario
{
    private const int DefaultConnections = 64;

    /// <summary>The longest Unix socket path the kernel takes (sun_path holds 108 bytes with the terminating NUL).</summary>
    private const int MostSocketPathBytes = 107;

    /// <summary>The two ways nginx reaches a sample: its Unix socket, then its TCP port.</summary>
    private static readonly UpstreamKind[] Routes =
    [
        new("unix", "to the sample over a Unix socket", Unix: true),
        new("tcp", "to the sample over TCP loopback", Unix: false),
    ];

    public override string Name => "proxy";

    public override string Summary =>
        $"GET /plaintext through nginx on the load generator's CPU, to the sample over a Unix socket and over TCP loopback with keep-alive upstreams, {DefaultConnections} connections (wrk)";

    public override LoadTool Tool => LoadTool.Wrk | LoadTool.Nginx;

    public override async Task<ScenarioPlan> PlanAsync(BenchContext context)
    {
        var o = context.Options;
        IReadOnlyList<int> connections = o.Connections ?? [DefaultConnections];
        var warmup = o.Warmup(WarmUp.DefaultMostSeconds);
        var path = o.PathOverride ?? "/plaintext";
        context.CheckLoadFdLimit(connections.Max());
        var nginx = NginxServer.Find() ?? throw new BenchException("nginx not found. Install it as root with:\napt-get install -y nginx-light", 2);
        var version = await NginxServer.VersionAsync(nginx, context.Cancellation);
        // Each upstream keeps as many idle connections as wrk has: under load nginx never has to open one.
        var keepalive = connections.Max();

        var result = new ScenarioResult("proxy", $"GET {path} through nginx, HTTP/1.1 keep-alive (wrk); nginx to the sample over a Unix socket or TCP loopback, keep-alive upstream connections", o.Variants);
        result.Notes.Add(WarmUp.Note("wrk", warmup) + "; the load goes through nginx: each window is half (rounded up) over the variant's Unix socket route, then the rest over its TCP route, and its req/s is over both");
        result.Notes.Add($"{o.Rounds} round(s) per case, variants interleaved; each run: {WarmUp.PerRunSeconds} s warm-up with its own load through the case's route (not recorded), then {o.DurationSeconds} s measured; peak RSS is the sample's VmHWM so far");
        result.Notes.Add($"wrk threads: {o.LoadThreads}; connection counts: {string.Join(", ", connections)}");
        result.Notes.Add($"nginx: {version}, one process (master_process off, worker_processes 1), access_log off, pinned to the load generator's CPUs ({o.ClientCpus}) beside wrk; the samples alone are on the server CPUs ({o.ServerCpus}). Per variant two routes, each a server block on 127.0.0.1 passing every request to an upstream of one server: the sample's Unix socket, or its TCP port; proxy_http_version 1.1, an empty Connection header and keepalive {keepalive} (idle upstream connections kept per upstream), keepalive_requests 1000000 towards wrk and towards the sample, so that no connection is closed under load. Default scheduling unless a variant says otherwise");
        result.Notes.Add($"Each sample listens on 127.0.0.1:<port> and on a Unix socket in a temporary folder deleted after the scenario (with nginx's configuration, pid and logs); the readiness check and the {TransportCounters.Path} readings go straight to the TCP port, not through nginx. Before any load both routes of every variant must answer GET {path} with 200 and the sample's own body");
        result.Notes.Add("CPU µs/req, peak RSS and the transport counters are the sample's; proxy CPU µs/req is nginx's utime + stime over the same measured load ÷ the requests completed in it (nginx holds every variant's routes, but only the running one has load)");

        var site = TempSite.Create();
        var front = new Front(context, nginx, site.Folder, keepalive, o.Variants.Count * 2 * keepalive + connections.Max() * 2 + 64, path);
        try
        {
            foreach (var v in o.Variants)
            {
                var socket = SocketPath(site.Folder, v);
                if (Encoding.UTF8.GetByteCount(socket) > MostSocketPathBytes)
                {
                    throw new BenchException($"the Unix socket path {socket} is longer than {MostSocketPathBytes} bytes, the most the kernel takes; set TMPDIR to a shorter folder.", 2);
                }
            }
        }
        catch
        {
            site.Dispose();
            throw;
        }

        foreach (var v in o.Variants)
        {
            result.Commands.Add(ServerProcess.DisplayCommand(context, v.ArgList, unixSocket: SocketPath("<temp folder>", v)) + $"   # {v.Name}");
        }
        result.Commands.Add(NginxServer.DisplayCommand(o.ClientCpus, "the proxy, on the load generator's CPUs"));
        var shownRoutes = o.Variants.SelectMany(v => Routes.Select(r => Route(r, v, "<port>", SocketPath("<temp folder>", v), $"<{v.Name} port>")));
        result.Commands.AddRange(NginxServer.ProxyConfig("<temp folder>", shownRoutes, keepalive, front.WorkerConnections)
            .Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => "#     " + line));

        var cases = new List<CasePlan>();
        foreach (var c in connections)
        {
            var load = new WrkLoad(path, "report.lua", [], c);
            result.Commands.Add(Wrk.DisplayCommand(context, load, WarmUp.PerRunSeconds) + "   # warm-up of each run, to the port of the case's route");
            result.Commands.Add(Wrk.DisplayCommand(context, load, o.DurationSeconds) + "   # measured");
            foreach (var route in Routes)
            {
                cases.Add(new CasePlan(
                    new CaseResult($"through nginx, {route.Title}, {c} connections", Label(route, c), [.. Wrk.Metrics, Metric.ProxyCpuPerRequest], Wrk.Details),
                    (server, variant, round) => Wrk.MeasureAsync(context, server, variant, load, round, front.Hop(server, route))));
            }
        }

        var warmLoad = new WrkLoad(path, "report.lua", [], connections.Contains(DefaultConnections) ? DefaultConnections : connections[0]);
        var plan = new ScenarioPlan
        {
            Result = result,
            Servers = [.. o.Variants.Select(v => ServerSpec.Sample(context, v, [], unixSocket: SocketPath(site.Folder, v)))],
            AfterAllStart = servers => front.StartAsync(servers, o.Variants),
            WarmUp = new WarmUpPlan(warmup, $"through nginx at {warmLoad.Connections} connections, half over the Unix socket, half over TCP", async (server, seconds) =>
            {
                // Both routes in every window, so that the code of each (Unix and TCP connections) has tiered up before any is measured.
                var unixSeconds = (seconds + 1) / 2;
                var tcpSeconds = Math.Max(1, seconds - unixSeconds);
                var unixRps = await WarmUp.WrkWindow(context, warmLoad, front.Hop(server, Routes[0]).Port)(server, unixSeconds);
                var tcpRps = await WarmUp.WrkWindow(context, warmLoad, front.Hop(server, Routes[1]).Port)(server, tcpSeconds);
                return (unixRps * unixSeconds + tcpRps * tcpSeconds) / (unixSeconds + tcpSeconds);
            }),
            Cases = cases,
            SecondsPerRun = WarmUp.PerRunSeconds + o.DurationSeconds + 1,
            Finish = () => TransportTargets.Proxy(Label(Routes[0], DefaultConnections), Label(Routes[1], DefaultConnections))(result),
        };
        // In this order: nginx stops before its folder is deleted.
        plan.Resources.Add(front);
        plan.Resources.Add(site);
        return plan;
    }

    private static string Label(UpstreamKind route, int connections) => $"{route.Name} c={connections}";

    private static string SocketPath(string folder, Variant variant) => $"{folder}/{variant.Name}.sock";

    /// <summary>nginx's route to <paramref name="variant"/>'s sample by <paramref name="kind"/>, listening on <paramref name="listen"/>.</summary>
    private static ProxyRoute Route(UpstreamKind kind, Variant variant, string listen, string socket, string port) =>
        new(listen, $"{variant.Name}_{kind.Name}", kind.Unix ? $"unix:{socket}" : $"127.0.0.1:{port}");

    /// <summary>A way from nginx to a sample: its name in the case labels and the upstream names, and the case title's words.</summary>
    private sealed record UpstreamKind(string Name, string Title, bool Unix);

    /// <summary>
    /// nginx in front of the samples, started once they all answer: its routes' ports by sample, and the check that
    /// every route answers. Disposing it stops nginx.
    /// </summary>
    private sealed class Front(BenchContext context, string executable, string folder, int keepalive, int workerConnections, string path) : IDisposable
    {
        /// <summary>The ports nginx listens on, by sample and route, in the order of <see cref="Routes"/>.</summary>
        private readonly Dictionary<IServer, int[]> _ports = [];

        private NginxServer? _nginx;

        public int WorkerConnections => workerConnections;

        /// <summary>The hop through nginx to <paramref name="server"/> by <paramref name="route"/>.</summary>
        public ProxyHop Hop(IServer server, UpstreamKind route) =>
            new(_nginx ?? throw new InvalidOperationException("nginx has not started."), _ports[server][Array.IndexOf(Routes, route)]);

        /// <summary>Writes nginx's configuration for <paramref name="servers"/> (those of <paramref name="variants"/>, in order), starts it and checks every route.</summary>
        public async Task StartAsync(IReadOnlyList<IServer> servers, IReadOnlyList<Variant> variants)
        {
            var taken = servers.Select(s => s.Port).ToHashSet();
            var routes = new List<ProxyRoute>();
            for (var i = 0; i < servers.Count; i++)
            {
                var ports = new int[Routes.Length];
                for (var r = 0; r < Routes.Length; r++)
                {
                    // Free ports one after the other can repeat: each must be one of its own.
                    do
                    {
                        ports[r] = ServerProcess.FreePort();
                    }
                    while (!taken.Add(ports[r]));
                    routes.Add(Route(Routes[r], variants[i], Invariant(ports[r]), SocketPath(folder, variants[i]), Invariant(servers[i].Port)));
                }
                _ports[servers[i]] = ports;
            }
            _nginx = await NginxServer.StartProxyAsync(context, executable, folder, routes, keepalive, workerConnections, context.Cancellation);

            using var handler = new SocketsHttpHandler { UseProxy = false, AutomaticDecompression = DecompressionMethods.None };
            using var client = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(10) };
            for (var i = 0; i < servers.Count; i++)
            {
                var direct = await GetAsync(client, servers[i].Port, $"{variants[i].Name} (directly)");
                for (var r = 0; r < Routes.Length; r++)
                {
                    var through = await GetAsync(client, _ports[servers[i]][r], $"nginx's {Routes[r].Name} route to {variants[i].Name}");
                    if (through != direct)
                    {
                        throw new BenchException($"nginx's {Routes[r].Name} route to {variants[i].Name} answered GET {path} with '{through}', not the sample's '{direct}'.{NginxLog()}");
                    }
                }
            }
        }

        private async Task<string> GetAsync(HttpClient client, int port, string what)
        {
            try
            {
                using var response = await client.GetAsync($"http://127.0.0.1:{Invariant(port)}{path}", context.Cancellation);
                var body = await response.Content.ReadAsStringAsync(context.Cancellation);
                return response.StatusCode == HttpStatusCode.OK
                    ? body
                    : throw new BenchException($"{what} answered GET {path} with status {(int)response.StatusCode}, not 200.{NginxLog()}");
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !context.Cancellation.IsCancellationRequested)
            {
                throw new BenchException($"{what}: GET {path} failed: {e.Message}{NginxLog()}");
            }
        }

        /// <summary>nginx's error log, which says why a route failed (a 502: the upstream refused or reset).</summary>
        private string NginxLog() => _nginx is null ? "" : $" nginx's error log:\n{_nginx.ErrorLogTail()}";

        private static string Invariant(int port) => port.ToString(System.Globalization.CultureInfo.InvariantCulture);

        public void Dispose() => _nginx?.StopAsync().GetAwaiter().GetResult();
    }
}
