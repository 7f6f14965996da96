using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace AbBench;

/// <summary>
/// One run's samples/WebApp server: <c>taskset -c CPUS dotnet WebApp.dll ARGS --urls http://127.0.0.1:PORT</c>, or
/// https:// when it serves a certificate the harness made, and with a Unix socket beside it when a proxy reaches the
/// server that way (<c>--urls "http://127.0.0.1:PORT;http://unix:PATH"</c>: the harness's own checks and readings
/// still go over TCP). taskset execs dotnet, so the process id is the server's and its /proc entries are the server's.
/// </summary>
internal sealed class ServerProcess : ServedProcess
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    private readonly OutputTail _output = new();

    private readonly string _appPath;

    /// <summary>Whether the server speaks cleartext HTTP/2 alone (by prior knowledge), so that HTTP/1.1 is refused.</summary>
    private readonly bool _http2;

    /// <summary>The certificate of an https server, the only one its clients here trust; null for http.</summary>
    private readonly SelfSignedCertificate? _tls;

    private string? _startupLine;

    private ServerProcess(Process process, int port, string appPath, bool http2, SelfSignedCertificate? tls)
        : base(process, port)
    {
        _appPath = appPath;
        _http2 = http2;
        _tls = tls;
    }

    /// <summary>The sample's own startup line, e.g. "Transport: epoll; inline scheduling: on", once logged.</summary>
    public override string? StartupLine => _startupLine;

    /// <summary>How a server is started, for the result file (the port differs per run; so does a Unix socket's folder).</summary>
    public static string DisplayCommand(BenchContext context, IEnumerable<string> args, bool https = false, string? unixSocket = null) =>
        $"taskset -c {context.Options.ServerCpus} dotnet {Path.GetFileName(context.AppPath)} {CommandLine.Join(args)} --urls {CommandLine.Join([Urls(https, "<port>", unixSocket)])}".Replace("  ", " ", StringComparison.Ordinal);

    /// <summary>
    /// Starts a server on a free port and returns once GET /plaintext answers with a 2xx status. With
    /// <paramref name="tls"/> it listens on https (<paramref name="args"/> name the certificate for Kestrel) and the
    /// check trusts that certificate alone. With <paramref name="unixSocket"/> it also listens on that Unix socket
    /// (cleartext), which nothing here checks: the readiness check and the counters go over TCP.
    /// </summary>
    public static async Task<ServerProcess> StartAsync(BenchContext context, IEnumerable<string> args, bool http2, SelfSignedCertificate? tls,
        string? unixSocket, CancellationToken cancellation)
    {
        var port = FreePort();
        var startInfo = new ProcessStartInfo("taskset")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Path.GetDirectoryName(context.AppPath) ?? "",
        };
        foreach (var arg in (string[])["-c", context.Options.ServerCpus, context.DotnetPath, context.AppPath, .. args, "--urls", Urls(tls is not null, port.ToString(CultureInfo.InvariantCulture), unixSocket)])
        {
            startInfo.ArgumentList.Add(arg);
        }

        var server = new ServerProcess(Processes.Start(startInfo), port, context.AppPath, http2, tls);
        server._output.Attach(server.Process, server.SeeStartupLine);
        try
        {
            await server.WaitUntilReadyAsync(cancellation);
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>The last lines the server printed.</summary>
    public string OutputTail() => _output.ToString();

    private void SeeStartupLine(string line)
    {
        var at = line.IndexOf("Transport: ", StringComparison.Ordinal);
        if (at >= 0 && _startupLine is null)
        {
            // "Transport: X; inline scheduling: Y; static files: --static Z, served by M", without the folder the
            // line ends with: it names a place on this machine (a temporary one in the static and disk scenarios).
            var parts = line[at..].Split(';');
            var kept = parts.Take(2).ToList();
            if (parts.Length > 2 && parts[2].StartsWith(" static files: ", StringComparison.Ordinal)
                && parts[2].IndexOf(" from ", StringComparison.Ordinal) is var from and > 0)
            {
                kept.Add(parts[2][..from]);
            }
            _startupLine = string.Join(';', kept);
        }
    }

    /// <summary>
    /// Reads GET /transport/metrics over a connection of its own, closed before this returns: HTTP/2 by prior knowledge
    /// on a server that speaks nothing else, HTTP/1.1 otherwise (over TLS on an https one). Null when the sample has
    /// no such endpoint (404: one built before it).
    /// </summary>
    public override async Task<IReadOnlyDictionary<string, double>?> ReadTransportCountersAsync(CancellationToken cancellation)
    {
        using var client = NewClient(TimeSpan.FromSeconds(10));
        try
        {
            using var request = Request(TransportCounters.Path);
            using var response = await client.SendAsync(request, cancellation);
            if (response.StatusCode == HttpStatusCode.NotFound)
            {
                return null;
            }
            if (!response.IsSuccessStatusCode)
            {
                throw new BenchException($"GET {TransportCounters.Path} answered HTTP {(int)response.StatusCode}.");
            }
            return TransportCounters.Parse(await response.Content.ReadAsStringAsync(cancellation));
        }
        catch (Exception e) when (e is HttpRequestException || e is TaskCanceledException && !cancellation.IsCancellationRequested)
        {
            throw new BenchException($"GET {TransportCounters.Path} failed: {e.Message}");
        }
    }

    /// <summary>A client of its own (a fresh connection, closed when it is disposed) that trusts only this server's certificate.</summary>
    private HttpClient NewClient(TimeSpan timeout)
    {
        var handler = new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(1), UseProxy = false };
        if (_tls is { } tls)
        {
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) => tls.Validate(certificate, errors);
        }
        return new HttpClient(handler) { Timeout = timeout };
    }

    /// <summary>A GET of <paramref name="path"/> in the protocol the server speaks.</summary>
    private HttpRequestMessage Request(string path) =>
        new(HttpMethod.Get, Url(_tls is not null, Port.ToString(CultureInfo.InvariantCulture), path))
        {
            Version = _http2 ? HttpVersion.Version20 : HttpVersion.Version11,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };

    private async Task WaitUntilReadyAsync(CancellationToken cancellation)
    {
        using var client = NewClient(TimeSpan.FromSeconds(2));
        var started = Stopwatch.StartNew();
        var last = "no answer yet";
        while (true)
        {
            cancellation.ThrowIfCancellationRequested();
            if (Process.HasExited)
            {
                await Process.WaitForExitAsync(cancellation);
                throw new BenchException($"the server exited with code {Process.ExitCode} before it answered GET /plaintext. Its output:\n{OutputTail()}");
            }
            try
            {
                using var request = Request("/plaintext");
                using var response = await client.SendAsync(request, cancellation);
                if (response.IsSuccessStatusCode)
                {
                    break;
                }
                last = $"HTTP {(int)response.StatusCode}";
            }
            catch (HttpRequestException e)
            {
                last = e.Message;
            }
            catch (TaskCanceledException) when (!cancellation.IsCancellationRequested)
            {
                last = "no answer within 2 s";
            }
            if (started.Elapsed > StartTimeout)
            {
                throw new BenchException($"the server did not answer GET /plaintext within {StartTimeout.TotalSeconds:0} s (last: {last}). Its output:\n{OutputTail()}");
            }
            await Task.Delay(100, cancellation);
        }

        // The pid must be the server's own, not a wrapper's: CPU time and RSS are read from it.
        var cmdline = ReadProc("cmdline");
        if (!cmdline.Split('\0').Contains(_appPath))
        {
            throw new BenchException($"pid {Pid} is not the server process (its command line is '{cmdline.Replace('\0', ' ')}').");
        }
    }

    protected override string GoneMessage(string error) =>
        $"the server (pid {Pid}) is gone: {error}. Its output:\n{OutputTail()}";

    /// <summary>A URL on 127.0.0.1, where every server the harness starts listens; the loads use it too.</summary>
    public static string Url(bool https, string port, string path) => $"{(https ? "https" : "http")}://127.0.0.1:{port}{path}";

    /// <summary>
    /// The server's --urls: the TCP URL on 127.0.0.1, then the Unix socket's, if any (Kestrel takes a list separated
    /// by semicolons; a Unix socket is <c>http://unix:PATH</c>).
    /// </summary>
    private static string Urls(bool https, string port, string? unixSocket) =>
        Url(https, port, "") + (unixSocket is null ? "" : $";http://unix:{unixSocket}");

    /// <summary>A TCP port on 127.0.0.1 that nothing listens on right now.</summary>
    public static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            return ((IPEndPoint)listener.LocalEndpoint).Port;
        }
        finally
        {
            listener.Stop();
        }
    }
}
