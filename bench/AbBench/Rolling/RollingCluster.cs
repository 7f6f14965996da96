using System.Diagnostics;
using System.Globalization;
using System.Net;

namespace AbBench;

/// <summary>
/// nginx (deploy/nginx-upstream.conf, one worker, pinned with the load) in front of the instances, each on its socket
/// as <see cref="ListenMode"/> says. The server the load sees is nginx: <see cref="Port"/> and <see cref="Pid"/> are
/// its own. Everything nginx writes (its logs, temp files) goes into a temporary folder, removed at the end.
/// </summary>
internal sealed class RollingCluster : IServer
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(10);

    private readonly DirectoryInfo _folder;
    private readonly List<RollingInstance> _instances = [];
    private Process? _nginx;

    private RollingCluster(DirectoryInfo folder, ListenMode mode)
    {
        _folder = folder;
        Mode = mode;
    }

    public ListenMode Mode { get; }

    public IReadOnlyList<RollingInstance> Instances => _instances;

    public int Port { get; private set; }

    public int Pid => _nginx?.Id ?? 0;

    public string? StartupLine => $"nginx {Path.GetFileName(DeployFiles.NginxConf)} (master_process off, 1 worker) in front of {_instances.Count} instances, {(Mode == ListenMode.Inherited ? "each on an inherited socket" : "each process on its own SO_REUSEPORT socket on the instance's TCP port")}";

    /// <summary>nginx's access log: one line per request, <c>$msec $status "$upstream_status" $request_time</c>.</summary>
    public string AccessLog => Path.Combine(_folder.FullName, "access.log");

    /// <summary>nginx's error log, where each failed attempt on an instance says why (a reset, a close without an answer).</summary>
    public string ErrorLog => Path.Combine(_folder.FullName, "error.log");

    public static async Task<RollingCluster> StartAsync(BenchContext context, DeployFiles deploy, ListenMode mode, string nginx, CancellationToken ct)
    {
        var cluster = new RollingCluster(Directory.CreateTempSubdirectory("abbench-rolling-"), mode);
        try
        {
            for (var i = 1; i <= deploy.UpstreamPorts.Count; i++)
            {
                RollingInstance instance = mode == ListenMode.Inherited
                    ? new InheritedInstance(context, deploy, i)
                    : new ReusePortInstance(context, deploy, i);
                cluster._instances.Add(instance);
                await instance.StartAsync(ct);
            }
            await cluster.StartNginxAsync(context, deploy, nginx, ct);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>The nginx.conf around deploy's file: a process of its own in the temp folder, the access log the figures come from.</summary>
    public static string Config(string folder) => NginxServer.Config(folder, 4096,
        $"    include {folder}/webapp.conf;",
        $"log_format rolling '$msec $status \"$upstream_status\" $request_time $request_method';\n    access_log {folder}/access.log rolling buffer=256k flush=1s;");

    private async Task StartNginxAsync(BenchContext context, DeployFiles deploy, string executable, CancellationToken ct)
    {
        var folder = _folder.FullName;
        Port = ServerProcess.FreePort();
        await File.WriteAllTextAsync(Path.Combine(folder, "webapp.conf"), deploy.NginxFor(Port, i => _instances[i - 1].Upstream), ct);
        var conf = Path.Combine(folder, "nginx.conf");
        await File.WriteAllTextAsync(conf, Config(folder), ct);
        var startInfo = new ProcessStartInfo("taskset");
        foreach (var arg in (string[])["-c", context.Options.ClientCpus, executable, "-c", conf, "-p", folder, "-e", Path.Combine(folder, "error.log")])
        {
            startInfo.ArgumentList.Add(arg);
        }
        _nginx = Processes.Start(startInfo);

        using var client = new HttpClient(new SocketsHttpHandler { UseProxy = false, ConnectTimeout = TimeSpan.FromSeconds(1) }) { Timeout = TimeSpan.FromSeconds(5) };
        var clock = Stopwatch.StartNew();
        var last = "no answer yet";
        while (true)
        {
            if (_nginx.HasExited)
            {
                throw new BenchException($"nginx exited with code {_nginx.ExitCode}. Its error log:\n{ErrorLogTail()}");
            }
            try
            {
                using var response = await client.GetAsync(ServerProcess.Url(false, Port.ToString(CultureInfo.InvariantCulture), "/plaintext"), ct);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
                last = $"HTTP {(int)response.StatusCode}";
            }
            catch (HttpRequestException e)
            {
                last = e.Message;
            }
            if (clock.Elapsed > StartTimeout)
            {
                throw new BenchException($"nginx did not answer GET /plaintext within {StartTimeout.TotalSeconds:0} s (last: {last}). Its error log:\n{ErrorLogTail()}");
            }
            await Task.Delay(50, ct);
        }
    }

    public string ErrorLogTail()
    {
        try
        {
            return Processes.TailOf(File.ReadAllText(Path.Combine(_folder.FullName, "error.log")), 20);
        }
        catch (IOException)
        {
            return "    (no error log)";
        }
    }

    public Dictionary<int, long> ReadTieringTicks() => [];

    public long ReadCpuTicks() => ProcFiles.CpuTicks(File.ReadAllText($"/proc/{Pid}/stat"));

    public long ReadStatusKiB(string field) =>
        ProcFiles.StatusKiB(File.ReadAllText($"/proc/{Pid}/status"), field) ?? throw new BenchException($"/proc/{Pid}/status has no {field} line.");

    public Task<IReadOnlyDictionary<string, double>?> ReadTransportCountersAsync(CancellationToken cancellation) =>
        Task.FromResult<IReadOnlyDictionary<string, double>?>(null);

    public async ValueTask DisposeAsync()
    {
        if (_nginx is { } nginx)
        {
            _nginx = null;
            await Processes.TerminateAsync(nginx, TimeSpan.FromSeconds(10));
            Processes.Forget(nginx);
            nginx.Dispose();
        }
        foreach (var instance in _instances)
        {
            await instance.DisposeAsync();
        }
        _instances.Clear();
        try
        {
            _folder.Delete(recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
