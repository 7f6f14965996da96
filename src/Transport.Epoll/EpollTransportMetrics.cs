using System.Diagnostics.Metrics;
using EpollTransport.Reactor;

namespace EpollTransport;

/// <summary>
/// The <c>EpollTransport</c> meter. Every instrument is observable and reads the reactors' own counters, tagged
/// with the reactor id, so the hot path pays nothing for metrics whether or not anyone listens. A loop started on its
/// own (<see cref="EpollLoop.Start"/>) has a meter of its own, whose measurements also carry <c>epoll.loop</c>, its
/// thread's name, so that they are not taken for those of a transport's reactor 0.
/// </summary>
internal sealed class EpollTransportMetrics : IDisposable
{
    public const string MeterName = "EpollTransport";

    private readonly Meter _meter;
    private readonly Func<EpollReactor[]> _reactors;
    private readonly KeyValuePair<string, object?>? _loopTag;
    private readonly bool _ownsMeter;

    /// <param name="meterFactory">Makes the meter; without one the meter is this object's own.</param>
    /// <param name="reactors">The reactors running now.</param>
    /// <param name="loopName">The thread name of a loop started on its own; null for a transport's reactors.</param>
    public EpollTransportMetrics(IMeterFactory? meterFactory, Func<EpollReactor[]> reactors, string? loopName = null)
    {
        _reactors = reactors;
        _loopTag = loopName is null ? null : new("epoll.loop", loopName);
        // A factory's meters belong to the factory (it disposes them, and may hand the same one to several callers).
        _ownsMeter = meterFactory is null;
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);

        Counter("epoll.reactor.waits", "{call}", "epoll_wait calls.", static r => r.Counters.Waits);
        Counter("epoll.reactor.events", "{event}", "Events returned by epoll_wait.", static r => r.Counters.Events);
        Counter("epoll.reactor.budget_exhaustions", "{turn}", "Times a handler spent its per-turn budget and went to the back of the ready list.", static r => r.Counters.BudgetExhaustions);
        Counter("epoll.reactor.wakeups.sent", "{wakeup}", "Eventfd writes that woke a blocked reactor.", static r => r.Counters.WakeUps);
        Counter("epoll.reactor.wakeups.avoided", "{wakeup}", "Posts that found the reactor awake and needed no eventfd write.", static r => r.Wakeup.Avoided);
        Counter("epoll.reactor.read_would_block", "{call}", "recv calls that returned EAGAIN.", static r => r.Counters.ReadWouldBlock);
        Counter("epoll.reactor.read_queue_drained", "{call}", "recv calls after which the kernel reported the receive queue empty (TCP_INQ), so that no EAGAIN call was needed.", static r => r.Counters.ReadQueueDrained);
        Counter("epoll.reactor.read_short_drained", "{call}", "Unix stream receives shorter than their buffer, which emptied the receive queue, so that no EAGAIN call was needed.", static r => r.Counters.ReadShortDrained);
        Counter("epoll.reactor.write_would_block", "{call}", "sendmsg and sendfile calls that returned EAGAIN.", static r => r.Counters.WriteWouldBlock);
        Counter("epoll.connection.sendfile.calls", "{call}", "sendfile calls that sent file regions (zero-copy file bytes).", static r => r.Counters.FileSends);
        Counter("epoll.connection.sendfile.bytes", "By", "Bytes of file regions sent by sendfile.", static r => r.Counters.FileBytesSent);
        Counter("epoll.connection.sendfile.read_aheads", "{chunk}", "File region chunks not in the page cache, read ahead on a thread-pool thread before the reactor sent them.", static r => r.Counters.FileReadAheads);
        Counter("epoll.reactor.sends", "{call}", "sendmsg calls made by the reactor.", static r => r.Counters.Sends);
        Counter("epoll.reactor.send_segments", "{segment}", "Buffer segments gathered into sendmsg calls.", static r => r.Counters.SegmentsSent);
        Counter("epoll.connection.sends.write_through", "{call}", "sendmsg calls made by the thread that flushed the output, without a hand-off to the reactor.", static r => r.WriteThroughCounters.Sends);
        Counter("epoll.connection.sends.write_through.segments", "{segment}", "Buffer segments gathered into write-through sendmsg calls.", static r => r.WriteThroughCounters.Segments);
        Counter("epoll.connection.sends.write_through.would_block", "{call}", "Write-through sendmsg calls that returned EAGAIN.", static r => r.WriteThroughCounters.WouldBlock);
        Counter("epoll.connection.sends.handed_off", "{hand-off}", "Times a flushing thread handed the rest of a send to the reactor (EAGAIN, a short write, an error, or the end of the output).", static r => r.WriteThroughCounters.HandOffs);
        Counter("epoll.reactor.accepts", "{connection}", "Connections accepted.", static r => r.Counters.Accepts);
        Counter("epoll.reactor.read_pauses", "{pause}", "Times reading paused because the application had MaxReadBufferSize unread.", static r => r.Counters.ReadPauses);
        _meter.CreateObservableUpDownCounter("epoll.reactor.connections.active", () => Observe(static r => r.AssignedConnections),
            "{connection}", "Connections given to the reactor and not yet closed.");
        _meter.CreateObservableUpDownCounter("epoll.reactor.connections.paused", () => Observe(static r => r.Counters.PausedConnections),
            "{connection}", "Connections whose reading is paused because the application has MaxReadBufferSize unread (backpressure).");
        _meter.CreateObservableUpDownCounter("epoll.reactor.ready_list.length", () => Observe(static r => r.ReadyCount),
            "{handler}", "Handlers on the ready list, waiting for their next turn.");
    }

    private void Counter(string name, string unit, string description, Func<EpollReactor, long> read)
        => _meter.CreateObservableCounter(name, () => Observe(read), unit, description);

    private IEnumerable<Measurement<long>> Observe(Func<EpollReactor, long> read)
    {
        foreach (var reactor in _reactors())
        {
            var reactorTag = new KeyValuePair<string, object?>("epoll.reactor", reactor.Id);
            yield return _loopTag is { } loopTag
                ? new Measurement<long>(read(reactor), reactorTag, loopTag)
                : new Measurement<long>(read(reactor), reactorTag);
        }
    }

    public void Dispose()
    {
        if (_ownsMeter)
        {
            _meter.Dispose();
        }
    }
}
