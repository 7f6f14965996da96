using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace AbBench;

/// <summary>How an instance of the rolling scenario gets its listening socket, and so how it is restarted.</summary>
internal enum ListenMode
{
    /// <summary>An inherited socket, held by a process that outlives the service (systemd; here systemd-socket-activate).</summary>
    Inherited,

    /// <summary>Each process binds its own SO_REUSEPORT socket on the instance's port (<c>--reuse-port</c>).</summary>
    ReusePort,
}

/// <summary>
/// One instance behind nginx: the sample's process of the moment, and how to restart it. <see cref="RestartAsync"/>
/// returns once the old process has exited and the new one answers.
/// </summary>
internal abstract class RollingInstance(BenchContext context, DeployFiles deploy, int number) : IAsyncDisposable
{
    protected static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(60);
    protected static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(45);

    public int Number { get; } = number;

    protected BenchContext Context { get; } = context;

    protected DeployFiles Deploy { get; } = deploy;

    /// <summary>The instance's TCP port on 127.0.0.1, the same for every process it runs.</summary>
    protected int Port { get; } = ServerProcess.FreePort();

    /// <summary>What nginx's upstream server line names: <c>127.0.0.1:PORT</c>.</summary>
    public string Upstream => $"127.0.0.1:{Port}";

    public abstract Task StartAsync(CancellationToken ct);

    public abstract Task RestartAsync(CancellationToken ct);

    public abstract ValueTask DisposeAsync();

    /// <summary>The sample's process command: pinned to the server CPUs, the app and ExecStart='s arguments.</summary>
    protected static List<string> AppCommand(BenchContext context, DeployFiles deploy, IEnumerable<string> extra) =>
        ["taskset", "-c", context.Options.ServerCpus, context.DotnetPath, context.AppPath, .. deploy.AppArguments, .. extra];

    /// <summary>
    /// <see cref="AppCommand"/> as the result file shows it: <c>dotnet WebApp.dll</c>, without the paths of this machine
    /// (as the other scenarios show their servers).
    /// </summary>
    protected static List<string> DisplayAppCommand(BenchContext context, DeployFiles deploy, IEnumerable<string> extra) =>
        ["taskset", "-c", context.Options.ServerCpus, "dotnet", Path.GetFileName(context.AppPath), .. deploy.AppArguments, .. extra];

    protected static async Task SignalAsync(int pid, string signal) =>
        await Processes.TryReadAsync("kill", [$"-{signal}", pid.ToString(CultureInfo.InvariantCulture)], CancellationToken.None);

    /// <summary>Waits until <paramref name="pid"/> is gone (not our child: polled in /proc).</summary>
    protected static async Task WaitGoneAsync(int pid, TimeSpan limit, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        while (Directory.Exists($"/proc/{pid}"))
        {
            if (clock.Elapsed > limit)
            {
                throw new BenchException($"pid {pid} did not exit within {limit.TotalSeconds:0} s of SIGTERM.");
            }
            await Task.Delay(20, ct);
        }
    }

    /// <summary>One <c>GET /plaintext</c> with <c>Connection: close</c> over a connection of its own; true on a 200.</summary>
    protected static async Task<bool> AnswersAsync(EndPoint endPoint, TimeSpan limit, CancellationToken ct)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(limit);
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(endPoint, deadline.Token);
            await socket.SendAsync(Encoding.ASCII.GetBytes("GET /plaintext HTTP/1.1\r\nHost: rolling\r\nConnection: close\r\n\r\n"), deadline.Token);
            var buffer = new byte[4096];
            var received = await socket.ReceiveAsync(buffer, deadline.Token);
            return Encoding.ASCII.GetString(buffer, 0, received).StartsWith("HTTP/1.1 200", StringComparison.Ordinal);
        }
        catch (Exception e) when (e is SocketException || e is OperationCanceledException && !ct.IsCancellationRequested)
        {
            return false;
        }
    }
}
