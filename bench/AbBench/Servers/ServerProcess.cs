using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace AbBench;

/// <summary>
/// One run's samples/WebApp server: <c>taskset -c CPUS dotnet WebApp.dll ARGS --urls http://127.0.0.1:PORT</c>, or
/// https:// when it serves a certificate the harness made. taskset execs dotnet, so the process id is the server's
/// and its /proc entries are the server's.
/// </summary>
internal sealed class ServerProcess : ServedProcess
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    private readonly Queue<string> _output = new();

    private readonly string _appPath;

    private string? _startupLine;

    private ServerProcess(Process process, int port, string appPath)
        : base(process, port)
    {
        _appPath = appPath;
    }

    /// <summary>The sample's own startup line, e.g. "Transport: epoll; inline scheduling: on", once logged.</summary>
    public override string? StartupLine => _startupLine;

    /// <summary>How a server is started, for the result file (the port differs per run).</summary>
    public static string DisplayCommand(BenchContext context, IEnumerable<string> args, bool https = false) =>
        $"taskset -c {context.Options.ServerCpus} dotnet {Path.GetFileName(context.AppPath)} {CommandLine.Join(args)} --urls {Url(https, "<port>", "")}".Replace("  ", " ", StringComparison.Ordinal);

    /// <summary>
    /// Starts a server on a free port and returns once GET /plaintext answers with a 2xx status. With
    /// <paramref name="tls"/> it listens on https (<paramref name="args"/> name the certificate for Kestrel) and the
    /// check trusts that certificate alone.
    /// </summary>
    public static async Task<ServerProcess> StartAsync(BenchContext context, IEnumerable<string> args, bool http2, SelfSignedCertificate? tls, CancellationToken cancellation)
    {
        var port = FreePort();
        var startInfo = new ProcessStartInfo("taskset")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Path.GetDirectoryName(context.AppPath) ?? "",
        };
        foreach (var arg in (string[])["-c", context.Options.ServerCpus, context.DotnetPath, context.AppPath, .. args, "--urls", Url(tls is not null, port.ToString(CultureInfo.InvariantCulture), "")])
        {
            startInfo.ArgumentList.Add(arg);
        }

        var server = new ServerProcess(Processes.Start(startInfo), port, context.AppPath);
        server.Process.OutputDataReceived += (_, e) => server.Keep(e.Data);
        server.Process.ErrorDataReceived += (_, e) => server.Keep(e.Data);
        server.Process.BeginOutputReadLine();
        server.Process.BeginErrorReadLine();
        try
        {
            await server.WaitUntilReadyAsync(http2, tls, cancellation);
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>The last lines the server printed.</summary>
    public string OutputTail()
    {
        lock (_output)
        {
            return _output.Count == 0 ? "    (no output)" : string.Join('\n', _output.Select(l => "    " + l));
        }
    }

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_output)
        {
            _output.Enqueue(line);
            while (_output.Count > 40)
            {
                _output.Dequeue();
            }
        }
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

    private async Task WaitUntilReadyAsync(bool http2, SelfSignedCertificate? tls, CancellationToken cancellation)
    {
        using var handler = new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(1), UseProxy = false };
        if (tls is not null)
        {
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) => tls.Validate(certificate, errors);
        }
        using var client = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(2) };
        var url = new Uri(Url(tls is not null, Port.ToString(CultureInfo.InvariantCulture), "/plaintext"));
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
                using var request = new HttpRequestMessage(HttpMethod.Get, url)
                {
                    Version = http2 ? HttpVersion.Version20 : HttpVersion.Version11,
                    VersionPolicy = HttpVersionPolicy.RequestVersionExact,
                };
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
