using System.Diagnostics;
using System.Globalization;

namespace AbBench;

/// <summary>
/// An instance on a TCP port that each of its processes binds itself with SO_REUSEPORT (<c>--reuse-port</c>), the
/// way to restart without an inherited socket: the new process is started on the same port, and once it listens the
/// old one gets SIGTERM. While both listen the kernel spreads new connections over the two; those queued in the old
/// one's backlog when it closes its socket are reset.
/// </summary>
internal sealed class ReusePortInstance : RollingInstance
{
    /// <summary>The sample logs this once Kestrel has bound its sockets.</summary>
    private const string StartedLine = "Application started";

    private (Process Process, OutputTail Output)? _current;

    public ReusePortInstance(BenchContext context, DeployFiles deploy, int number)
        : base(context, deploy, number)
    {
    }

    public static string DisplayCommand(BenchContext context, DeployFiles deploy) =>
        CommandLine.Join(DisplayAppCommand(context, deploy, ["--reuse-port", "127.0.0.1:<port of the instance>"]));

    public override async Task StartAsync(CancellationToken ct) => _current = await StartProcessAsync(ct);

    /// <summary>Starts the next process on the port, waits until it has bound, then SIGTERMs the old one and waits for its exit.</summary>
    public override async Task RestartAsync(CancellationToken ct)
    {
        var old = _current ?? throw new BenchException($"instance {Number} is not running.");
        _current = await StartProcessAsync(ct);
        await StopAsync(old.Process);
    }

    private async Task<(Process, OutputTail)> StartProcessAsync(CancellationToken ct)
    {
        var command = AppCommand(Context, Deploy, ["--reuse-port", $"127.0.0.1:{Port}"]);
        var startInfo = new ProcessStartInfo(command[0]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in command.Skip(1))
        {
            startInfo.ArgumentList.Add(arg);
        }
        var process = Processes.Start(startInfo);
        var output = new OutputTail();
        output.Attach(process);
        var clock = Stopwatch.StartNew();
        while (!output.Contains(StartedLine))
        {
            if (process.HasExited || clock.Elapsed > ReadyTimeout)
            {
                await StopAsync(process);
                throw new BenchException($"instance {Number} (pid {process.Id}) did not start on 127.0.0.1:{Port.ToString(CultureInfo.InvariantCulture)}. Its output:\n{output}");
            }
            await Task.Delay(20, ct);
        }
        return (process, output);
    }

    private static async Task StopAsync(Process process)
    {
        try
        {
            await Processes.TerminateAsync(process, StopTimeout);
        }
        finally
        {
            Processes.Forget(process);
            process.Dispose();
        }
    }

    public override async ValueTask DisposeAsync()
    {
        if (_current is { } current)
        {
            _current = null;
            await StopAsync(current.Process);
        }
    }
}
