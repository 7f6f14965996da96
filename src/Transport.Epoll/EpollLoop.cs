using System.Buffers;
using System.IO.Pipelines;
using EpollTransport.Reactor;
using Microsoft.Extensions.Logging.Abstractions;

namespace EpollTransport;

/// <summary>
/// An epoll event loop: one thread that runs the work handed to it between its I/O, in the order it was posted
/// from each thread. Every reactor of the epoll transport is a loop, and a component can start one of its own.
/// </summary>
/// <remarks>
/// This is how another component, such as a static-file middleware whose disk calls run on helper threads, hands
/// a completion to the loop that runs a request without reaching into the transport. Work posted from another
/// thread writes the loop's eventfd only when the loop is blocked in <c>epoll_wait</c> (or about to block); work
/// posted on the loop's own thread costs no system call. Posted work must not block: it runs between the I/O of
/// every connection on the loop.
/// </remarks>
public sealed class EpollLoop : PipeScheduler, IAsyncDisposable
{
    [ThreadStatic]
    private static EpollLoop? t_current;

    private readonly EpollReactor _reactor;
    private readonly bool _ownsReactor;
    private EpollTransportMetrics? _metrics;

    internal EpollLoop(EpollReactor reactor, bool ownsReactor)
    {
        _reactor = reactor;
        _ownsReactor = ownsReactor;
    }

    /// <summary>
    /// The loop whose thread is calling, or null on any other thread. An application that the epoll transport runs
    /// inline (<see cref="EpollTransportOptions.UnsafePreferInlineScheduling"/>) sees the reactor of its connection.
    /// </summary>
    public static EpollLoop? Current => t_current;

    /// <summary>Whether the calling thread is this loop's thread.</summary>
    internal bool IsOnLoopThread => _reactor.IsOnReactorThread;

    /// <summary>Wake-ups written to the loop's eventfd so far: posts that found the loop blocked.</summary>
    internal long WakeUps => Volatile.Read(ref _reactor.Counters.WakeUps);

    /// <summary>
    /// Starts a loop of its own on a new background thread. It reports on a meter of its own named
    /// <c>EpollTransport</c>, as a transport's reactors do, its measurements tagged <c>epoll.loop</c> with
    /// <paramref name="threadName"/>.
    /// </summary>
    /// <param name="threadName">The thread's name, as tools such as <c>top -H</c> show it (15 characters are kept).</param>
    /// <returns>The running loop; <see cref="DisposeAsync"/> stops it.</returns>
    public static EpollLoop Start(string threadName)
    {
        ArgumentException.ThrowIfNullOrEmpty(threadName);
        var reactor = new EpollReactor(0, 64, MemoryPool<byte>.Shared, NullLogger.Instance, threadName, loopOwnsReactor: true);
        reactor.Loop._metrics = new EpollTransportMetrics(meterFactory: null, () => [reactor], loopName: threadName);
        reactor.Start();
        return reactor.Loop;
    }

    /// <summary>
    /// Runs <paramref name="action"/> on the loop's thread. Safe from any thread. Once the loop has stopped, the item
    /// still runs, on the thread pool, after the items posted before it and never concurrently with them.
    /// </summary>
    /// <remarks>
    /// Never dropped, and never a throw: as the scheduler of pipes this is called from inside <c>FlushAsync</c> and
    /// <c>Complete</c>, where an exception would surface in code that did nothing wrong and leave whoever awaits the
    /// continuation waiting for ever.
    /// </remarks>
    public override void Schedule(Action<object?> action, object? state) => _reactor.Schedule(action, state);

    /// <summary>
    /// Queues <paramref name="action"/> to run on the loop's thread, unless the loop has stopped. Safe from any thread.
    /// </summary>
    /// <param name="action">The work; it must not block, as it runs between the I/O of every connection on the loop.</param>
    /// <param name="state">Passed to <paramref name="action"/>.</param>
    /// <returns>
    /// <see langword="true"/>: the item will run on the loop's thread exactly once (also when the loop is stopping:
    /// it runs before the loop exits). <see langword="false"/>: the loop has stopped, or is past the point where it
    /// takes work, and the item will not run; the caller completes the work some other way.
    /// </returns>
    internal bool TrySchedule(Action<object?> action, object? state) => _reactor.TrySchedule(action, state);

    /// <summary>
    /// Stops a loop that <see cref="Start"/> made and waits until its thread has run the work already posted and
    /// exited. The loops of a transport belong to it: for those this does nothing.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (!_ownsReactor)
        {
            return;
        }
        _reactor.Stop();
        _metrics?.Dispose();
        if (!IsOnLoopThread)
        {
            await _reactor.Completion.ConfigureAwait(false);
        }
    }

    /// <summary>Called by the loop's thread when it starts and when it exits.</summary>
    internal static void SetCurrent(EpollLoop? loop) => t_current = loop;
}
