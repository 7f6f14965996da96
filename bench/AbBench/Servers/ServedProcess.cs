using System.Diagnostics;
using System.Globalization;

namespace AbBench;

/// <summary>
/// What every measured server has in common, whatever it runs: the process the harness started (taskset execs the
/// server, so its pid and /proc entries are the server's), the port it listens on, its CPU time and memory as /proc
/// shows them, and a stop that is SIGTERM, then a kill after 10 s.
/// </summary>
internal abstract class ServedProcess(Process process, int port) : IServer
{
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(10);

    private bool _stopped;

    public int Port { get; } = port;

    public int Pid => Process.Id;

    protected Process Process { get; } = process;

    public abstract string? StartupLine { get; }

    /// <summary>The message for a server whose /proc entry could not be read: <paramref name="error"/>, and its last words.</summary>
    protected abstract string GoneMessage(string error);

    /// <summary>
    /// CPU ticks of the runtime's tiered-compilation worker threads, by thread id (none while the runtime has
    /// nothing to tier up: the worker exits after a few idle seconds). Their growth says the JIT is still busy.
    /// </summary>
    public Dictionary<int, long> ReadTieringTicks()
    {
        var ticks = new Dictionary<int, long>();
        string[] tasks;
        try
        {
            tasks = Directory.GetDirectories($"/proc/{Pid}/task");
        }
        catch (IOException)
        {
            return ticks;
        }
        foreach (var task in tasks)
        {
            try
            {
                if (!File.ReadAllText(Path.Combine(task, "comm")).StartsWith(".NET Tiered", StringComparison.Ordinal))
                {
                    continue;
                }
                ticks[int.Parse(Path.GetFileName(task), CultureInfo.InvariantCulture)] =
                    ProcFiles.CpuTicks(File.ReadAllText(Path.Combine(task, "stat")));
            }
            catch (IOException)
            {
                // The thread exited between the listing and the read.
            }
        }
        return ticks;
    }

    public long ReadCpuTicks() => ProcFiles.CpuTicks(ReadProc("stat"));

    public long ReadStatusKiB(string field) =>
        ProcFiles.StatusKiB(ReadProc("status"), field) ?? throw new BenchException($"/proc/{Pid}/status has no {field} line.");

    public abstract Task<IReadOnlyDictionary<string, double>?> ReadTransportCountersAsync(CancellationToken cancellation);

    /// <summary>Stops the server: SIGTERM, then a kill if it has not exited within 10 s.</summary>
    public async Task StopAsync()
    {
        if (_stopped)
        {
            return;
        }
        _stopped = true;
        try
        {
            await Processes.TerminateAsync(Process, StopTimeout);
        }
        finally
        {
            Processes.Forget(Process);
            Process.Dispose();
        }
    }

    public async ValueTask DisposeAsync() => await StopAsync();

    protected string ReadProc(string name)
    {
        try
        {
            return File.ReadAllText($"/proc/{Pid}/{name}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BenchException(GoneMessage(e.Message));
        }
    }
}
