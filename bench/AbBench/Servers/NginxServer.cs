using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace AbBench;

/// <summary>
/// nginx as a reference static-file server: one process (<c>master_process off</c>, so the process that serves is
/// the one started, and its CPU time is all of nginx's), one worker's worth of event loop, sendfile, no access
/// log, pinned to the server CPUs like the .NET servers: <c>taskset -c CPUS nginx -c CONF -p DIR -e LOG</c>.
/// taskset execs nginx, so the process id is nginx's own.
/// </summary>
internal sealed class NginxServer : ServedProcess
{
    public const string VariantName = "nginx";

    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(10);

    private readonly string _errorLog;

    private NginxServer(Process process, int port, string errorLog)
        : base(process, port)
    {
        _errorLog = errorLog;
    }

    public override string StartupLine => "master_process off, worker_processes 1, sendfile on, access_log off";

    /// <summary>nginx has no epoll transport counters to give.</summary>
    public override Task<IReadOnlyDictionary<string, double>?> ReadTransportCountersAsync(CancellationToken cancellation) =>
        Task.FromResult<IReadOnlyDictionary<string, double>?>(null);

    /// <summary>/usr/sbin/nginx, else nginx on PATH; null if there is none.</summary>
    public static string? Find() => File.Exists("/usr/sbin/nginx") ? "/usr/sbin/nginx" : Processes.FindOnPath("nginx");

    /// <summary>The variant as the results show it: nginx takes no WebApp arguments.</summary>
    public static Variant Variant { get; } = new(VariantName, "-c nginx.conf -p <temp folder>");

    /// <summary>How nginx is started, for the result file.</summary>
    public static string DisplayCommand(BenchContext context) =>
        $"taskset -c {context.Options.ServerCpus} nginx -c <temp folder>/nginx.conf -p <temp folder> -e <temp folder>/error.log   # {VariantName}, with:";

    /// <summary>
    /// The configuration: what the point of the reference is (one process, sendfile, no access log) and enough
    /// keep-alive that wrk's connections are never closed under it (nginx's default is 1000 requests).
    /// Everything nginx writes (pid, error log, temp folders) goes into <paramref name="folder"/>.
    /// </summary>
    public static string Config(string folder, string root, int port, int connections) => $$"""
        daemon off;
        master_process off;
        worker_processes 1;
        pid {{folder}}/nginx.pid;
        error_log {{folder}}/error.log warn;
        events {
            worker_connections {{connections}};
        }
        http {
            access_log off;
            sendfile on;
            keepalive_requests 1000000;
            keepalive_timeout 120s;
            types {
                text/plain txt;
                text/html html;
                text/css css;
            }
            default_type application/octet-stream;
            client_body_temp_path {{folder}}/client_body;
            proxy_temp_path {{folder}}/proxy;
            fastcgi_temp_path {{folder}}/fastcgi;
            uwsgi_temp_path {{folder}}/uwsgi;
            scgi_temp_path {{folder}}/scgi;
            server {
                listen 127.0.0.1:{{port}};
                root {{root}};
            }
        }

        """;

    /// <summary>Writes nginx.conf into <paramref name="folder"/>, starts nginx and returns once it accepts connections.</summary>
    public static async Task<NginxServer> StartAsync(BenchContext context, string executable, string folder, string root,
        int connections, CancellationToken cancellation)
    {
        var port = ServerProcess.FreePort();
        var conf = Path.Combine(folder, "nginx.conf");
        // Room for the load's connections, the warm-up's and the checks'.
        await File.WriteAllTextAsync(conf, Config(folder, root, port, connections * 2 + 64), cancellation);
        var errorLog = Path.Combine(folder, "error.log");
        var startInfo = new ProcessStartInfo("taskset");
        foreach (var arg in (string[])["-c", context.Options.ServerCpus, executable, "-c", conf, "-p", folder, "-e", errorLog])
        {
            startInfo.ArgumentList.Add(arg);
        }

        var server = new NginxServer(Processes.Start(startInfo), port, errorLog);
        try
        {
            await server.WaitUntilListeningAsync(executable, cancellation);
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    private async Task WaitUntilListeningAsync(string executable, CancellationToken cancellation)
    {
        var started = Stopwatch.StartNew();
        while (true)
        {
            cancellation.ThrowIfCancellationRequested();
            if (Process.HasExited)
            {
                await Process.WaitForExitAsync(cancellation);
                throw new BenchException($"nginx exited with code {Process.ExitCode} before it listened. Its error log:\n{ErrorLogTail()}");
            }
            try
            {
                using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, Port), cancellation);
                break;
            }
            catch (SocketException) when (started.Elapsed < StartTimeout)
            {
                await Task.Delay(50, cancellation);
            }
            catch (SocketException e)
            {
                throw new BenchException($"nginx did not listen on port {Port} within {StartTimeout.TotalSeconds:0} s ({e.Message}). Its error log:\n{ErrorLogTail()}");
            }
        }

        // The pid must be nginx's own, not taskset's: CPU time and RSS are read from it.
        var cmdline = ReadProc("cmdline");
        if (cmdline.Split('\0').FirstOrDefault() is not { } first || !first.EndsWith(Path.GetFileName(executable), StringComparison.Ordinal))
        {
            throw new BenchException($"pid {Pid} is not nginx (its command line is '{cmdline.Replace('\0', ' ')}').");
        }
    }

    private string ErrorLogTail()
    {
        try
        {
            return Processes.TailOf(File.ReadAllText(_errorLog), 20);
        }
        catch (IOException)
        {
            return "    (no error log)";
        }
    }

    protected override string GoneMessage(string error) =>
        $"nginx (pid {Pid}) is gone: {error}. Its error log:\n{ErrorLogTail()}";

    /// <summary>The version nginx prints (to stderr), e.g. "nginx/1.22.1", for the results.</summary>
    public static async Task<string> VersionAsync(string executable, CancellationToken ct)
    {
        var output = await Processes.RunAsync(executable, ["-v"], TimeSpan.FromSeconds(10), ct);
        return output.StdErr.Trim() is { Length: > 0 } text ? text.Replace("nginx version: ", "", StringComparison.Ordinal) : "nginx, version unknown";
    }
}
