using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace AbBench;

/// <summary>
/// nginx, run by the harness in one of two roles: the static scenario's reference static-file server (pinned to the
/// server CPUs like the .NET servers, sendfile on), and the proxy scenario's reverse proxy in front of the samples
/// (pinned to the client CPUs with the load generator). Either way one process (<c>master_process off</c>, so the
/// process that serves is the one started, and its CPU time is all of nginx's), one worker's worth of event loop, no
/// access log: <c>taskset -c CPUS nginx -c CONF -p DIR -e LOG</c>. taskset execs nginx, so the process id is nginx's own.
/// </summary>
internal sealed class NginxServer : ServedProcess
{
    public const string VariantName = "nginx";

    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(10);

    private readonly string _errorLog;

    private readonly string _startupLine;

    private NginxServer(Process process, int port, string errorLog, string startupLine)
        : base(process, port)
    {
        _errorLog = errorLog;
        _startupLine = startupLine;
    }

    public override string StartupLine => _startupLine;

    /// <summary>nginx has no epoll transport counters to give.</summary>
    public override Task<IReadOnlyDictionary<string, double>?> ReadTransportCountersAsync(CancellationToken cancellation) =>
        Task.FromResult<IReadOnlyDictionary<string, double>?>(null);

    /// <summary>/usr/sbin/nginx, else nginx on PATH; null if there is none.</summary>
    public static string? Find() => File.Exists("/usr/sbin/nginx") ? "/usr/sbin/nginx" : Processes.FindOnPath("nginx");

    /// <summary>The variant as the results show it: nginx takes no WebApp arguments.</summary>
    public static Variant Variant { get; } = new(VariantName, "-c nginx.conf -p <temp folder>");

    /// <summary>How nginx is started on <paramref name="cpus"/>, for the result file; <paramref name="role"/> ends the line's comment.</summary>
    public static string DisplayCommand(string cpus, string role) =>
        $"taskset -c {cpus} nginx -c <temp folder>/nginx.conf -p <temp folder> -e <temp folder>/error.log   # {role}, with:";

    /// <summary>
    /// The reference static-file server's configuration: what the point of the reference is (one process, sendfile,
    /// no access log), serving <paramref name="root"/> on <paramref name="port"/>.
    /// </summary>
    public static string StaticConfig(string folder, string root, int port, int connections) => Config(folder, connections, $$"""
            sendfile on;
            types {
                text/plain txt;
                text/html html;
                text/css css;
            }
            default_type application/octet-stream;
            server {
                listen 127.0.0.1:{{port}};
                root {{root}};
            }
        """);

    /// <summary>
    /// The reverse proxy's configuration: per route one <c>upstream</c> that keeps up to <paramref name="keepalive"/>
    /// idle connections to its server (nginx's documented way to reuse upstream connections: HTTP/1.1 and an empty
    /// Connection header) and one <c>server</c> that passes every request to it. Ports and addresses are text, so that
    /// the result file can show the configuration with placeholders.
    /// </summary>
    public static string ProxyConfig(string folder, IEnumerable<ProxyRoute> routes, int keepalive, int connections)
    {
        var http = new StringBuilder();
        foreach (var route in routes)
        {
            http.Append($$"""
                    upstream {{route.Upstream}} {
                        server {{route.Server}};
                        keepalive {{keepalive}};
                        keepalive_requests 1000000;
                    }
                    server {
                        listen 127.0.0.1:{{route.Listen}};
                        location / {
                            proxy_pass http://{{route.Upstream}};
                            proxy_http_version 1.1;
                            proxy_set_header Connection "";
                        }
                    }

                """);
        }
        return Config(folder, connections, http.ToString().TrimEnd('\n'));
    }

    /// <summary>
    /// What every role shares (the static reference, the proxy, the rolling scenario's front): one process in the
    /// foreground, and enough keep-alive that wrk's connections are never closed under it (nginx's default is 1000
    /// requests). <paramref name="http"/> goes into the <c>http</c> block, indented by 4, after
    /// <paramref name="accessLog"/> (no access log unless given). Everything nginx writes (pid, error log, temp
    /// folders) goes into <paramref name="folder"/>.
    /// </summary>
    public static string Config(string folder, int connections, string http, string accessLog = "access_log off;") => $$"""
        daemon off;
        master_process off;
        worker_processes 1;
        pid {{folder}}/nginx.pid;
        error_log {{folder}}/error.log warn;
        events {
            worker_connections {{connections}};
        }
        http {
            {{accessLog}}
            keepalive_requests 1000000;
            keepalive_timeout 120s;
            client_body_temp_path {{folder}}/client_body;
            proxy_temp_path {{folder}}/proxy;
            fastcgi_temp_path {{folder}}/fastcgi;
            uwsgi_temp_path {{folder}}/uwsgi;
            scgi_temp_path {{folder}}/scgi;
        {{http}}
        }

        """;

    /// <summary>
    /// The static scenario's reference: writes nginx.conf into <paramref name="folder"/>, starts nginx on the server
    /// CPUs, serving <paramref name="root"/>, and returns once it accepts connections.
    /// </summary>
    public static Task<NginxServer> StartAsync(BenchContext context, string executable, string folder, string root,
        int connections, CancellationToken cancellation)
    {
        var port = ServerProcess.FreePort();
        // Room for the load's connections, the warm-up's and the checks'.
        return LaunchAsync(executable, folder, StaticConfig(folder, root, port, connections * 2 + 64), port, context.Options.ServerCpus,
            "master_process off, worker_processes 1, sendfile on, access_log off", cancellation);
    }

    /// <summary>
    /// The proxy scenario's front: writes nginx.conf into <paramref name="folder"/> with <paramref name="routes"/>,
    /// starts nginx on the client CPUs and returns once it accepts connections (it opens every listening socket
    /// before it accepts on any, so the first route's port answering says they all do).
    /// </summary>
    public static Task<NginxServer> StartProxyAsync(BenchContext context, string executable, string folder,
        IReadOnlyList<ProxyRoute> routes, int keepalive, int connections, CancellationToken cancellation) =>
        LaunchAsync(executable, folder, ProxyConfig(folder, routes, keepalive, connections), int.Parse(routes[0].Listen, System.Globalization.CultureInfo.InvariantCulture),
            context.Options.ClientCpus, $"master_process off, worker_processes 1, access_log off, proxy_http_version 1.1, upstream keepalive {keepalive}", cancellation);

    private static async Task<NginxServer> LaunchAsync(string executable, string folder, string config, int port, string cpus,
        string startupLine, CancellationToken cancellation)
    {
        var conf = Path.Combine(folder, "nginx.conf");
        await File.WriteAllTextAsync(conf, config, cancellation);
        var errorLog = Path.Combine(folder, "error.log");
        var startInfo = new ProcessStartInfo("taskset");
        foreach (var arg in (string[])["-c", cpus, executable, "-c", conf, "-p", folder, "-e", errorLog])
        {
            startInfo.ArgumentList.Add(arg);
        }

        var server = new NginxServer(Processes.Start(startInfo), port, errorLog, startupLine);
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

    /// <summary>The last lines of nginx's error log, indented, for a failure's message.</summary>
    public string ErrorLogTail()
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

/// <summary>
/// One way through the proxy: nginx listens on 127.0.0.1:<see cref="Listen"/> and passes every request to the
/// <c>upstream</c> named <see cref="Upstream"/>, whose one server is <see cref="Server"/> (<c>unix:PATH</c> or
/// <c>127.0.0.1:PORT</c>). All text, so that the result file can show placeholders.
/// </summary>
internal sealed record ProxyRoute(string Listen, string Upstream, string Server);
