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

    /// <summary>What the server says about itself at startup, for the result file (the sample: its transport and modes).</summary>
    string? StartupLine { get; }

    /// <summary>
    /// CPU ticks of the runtime's tiered-compilation worker threads, by thread id (none while the runtime has
    /// nothing to tier up, or in a server without a JIT). Their growth says the JIT is still busy.
    /// </summary>
    Dictionary<int, long> ReadTieringTicks();

    /// <summary>utime + stime of the whole process, in clock ticks.</summary>
    long ReadCpuTicks();

    /// <summary>A "kB" field of /proc/PID/status, such as VmRSS or VmHWM, in KiB.</summary>
    long ReadStatusKiB(string field);

    /// <summary>
    /// The epoll transport's counters by name (see <see cref="TransportCounters"/>), read over a connection of their own;
    /// empty on a transport without them, null for a server that has no way to tell (nginx).
    /// </summary>
    Task<IReadOnlyDictionary<string, double>?> ReadTransportCountersAsync(CancellationToken cancellation);
}
