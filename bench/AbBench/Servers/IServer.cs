namespace AbBench;

/// <summary>
/// A server under load, whatever it runs (samples/WebApp, or nginx as a reference): where it listens, and its
/// CPU time and memory as /proc shows them, so that every variant is measured the same way.
/// </summary>
internal interface IServer : IAsyncDisposable
{
    int Port { get; }

    /// <summary>The id of the process that serves; its CPU time and memory are the ones measured.</summary>
    int Pid { get; }

    /// <summary>utime + stime of the whole process, in clock ticks.</summary>
    long ReadCpuTicks();

    /// <summary>A "kB" field of /proc/PID/status, such as VmRSS or VmHWM, in KiB.</summary>
    long ReadStatusKiB(string field);
}
