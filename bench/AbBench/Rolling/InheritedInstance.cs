using System.Diagnostics;
using System.Globalization;
using System.Net;

namespace AbBench;

/// <summary>
/// An instance on an inherited socket, as deploy/webapp@.socket and webapp@.service run it under systemd:
/// <c>systemd-socket-activate -l SOCKET -- sh -c LOOP</c> creates the socket and holds it, like systemd, and execs a
/// shell that starts the sample again whenever it exits, each time with <c>LISTEN_PID</c> set to the new process (the
/// inner shell's pid, which exec keeps) and the socket as fd 3. A restart is SIGTERM to the sample's process: it stops
/// accepting, drains and exits, and the loop starts the next one on the same socket. Connections that arrive in
/// between wait in the socket's backlog.
/// </summary>
internal sealed class InheritedInstance : RollingInstance
{
    /// <summary>What systemd does on Restart=, and what <c>systemctl restart</c> does at once: start it again.</summary>
    private const string Loop = """while :; do sh -c 'export LISTEN_PID=$$; exec "$@"' instance "$@" || sleep 1; done""";

    private readonly OutputTail _output = new();
    private Process? _holder;

    public InheritedInstance(BenchContext context, DeployFiles deploy, int number)
        : base(context, deploy, number)
    {
    }

    public static string DisplayCommand(BenchContext context, DeployFiles deploy) =>
        $"systemd-socket-activate -l {deploy.ListenStream.Replace("%i", "<port of the instance>", StringComparison.Ordinal)} -- sh -c '{Loop}' loop {CommandLine.Join(DisplayAppCommand(context, deploy, []))}";

    public override async Task StartAsync(CancellationToken ct)
    {
        var startInfo = new ProcessStartInfo("systemd-socket-activate") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in (string[])["-l", Deploy.ListenAddress(Port), "--", "sh", "-c", Loop, "loop", .. AppCommand(Context, Deploy, [])])
        {
            startInfo.ArgumentList.Add(arg);
        }
        _holder = Processes.Start(startInfo);
        _output.Attach(_holder);

        // systemd-socket-activate execs the loop at the first connection: the readiness check is that connection.
        await WaitAnswersAsync(ct);
    }

    /// <summary>SIGTERM to the sample's process; returns once it has exited and its successor answers.</summary>
    public override async Task RestartAsync(CancellationToken ct)
    {
        var old = CurrentPid() ?? throw new BenchException($"instance {Number}: no sample process under the loop. Its output:\n{_output}");
        await SignalAsync(old, "TERM");
        await WaitGoneAsync(old, StopTimeout, ct);
        // The old process has closed its copy of the socket: whoever answers now is the new one.
        await WaitAnswersAsync(ct);
        if (CurrentPid() is not { } now || now == old)
        {
            throw new BenchException($"instance {Number}: no new sample process after the restart. Its output:\n{_output}");
        }
    }

    private async Task WaitAnswersAsync(CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        while (!await AnswersAsync(new IPEndPoint(IPAddress.Loopback, Port), ReadyTimeout, ct))
        {
            if (_holder!.HasExited || clock.Elapsed > ReadyTimeout)
            {
                throw new BenchException($"instance {Number} did not answer GET /plaintext on 127.0.0.1:{Port} within {ReadyTimeout.TotalSeconds:0} s. Its output:\n{_output}");
            }
            await Task.Delay(50, ct);
        }
    }

    /// <summary>The loop's child, once it is the sample (the inner shell and taskset exec into it, keeping the pid).</summary>
    private int? CurrentPid()
    {
        if (_holder is null || _holder.HasExited)
        {
            return null;
        }
        try
        {
            var children = File.ReadAllText($"/proc/{_holder.Id}/task/{_holder.Id}/children").Split(' ', StringSplitOptions.RemoveEmptyEntries);
            foreach (var child in children)
            {
                var pid = int.Parse(child, CultureInfo.InvariantCulture);
                if (File.ReadAllText($"/proc/{pid}/cmdline").Split('\0').Contains(Context.AppPath))
                {
                    return pid;
                }
            }
        }
        catch (IOException)
        {
            // Between two processes.
        }
        return null;
    }

    /// <summary>Stops the loop first (so that it starts nothing more), then the sample, which drains and exits.</summary>
    public override async ValueTask DisposeAsync()
    {
        if (_holder is null)
        {
            return;
        }
        var sample = CurrentPid();
        // The loop first, so that it starts nothing more. Its Process is not awaited: the sample shares its output pipes.
        await SignalAsync(_holder.Id, "TERM");
        if (sample is { } pid)
        {
            await SignalAsync(pid, "TERM");
            try
            {
                await WaitGoneAsync(pid, StopTimeout, CancellationToken.None);
            }
            catch (BenchException)
            {
                await SignalAsync(pid, "KILL");
            }
        }
        await Processes.TerminateAsync(_holder, TimeSpan.FromSeconds(5));
        Processes.Forget(_holder);
        _holder.Dispose();
        _holder = null;
    }
}
