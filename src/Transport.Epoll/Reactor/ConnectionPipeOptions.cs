using System.IO.Pipelines;

namespace EpollTransport.Reactor;

/// <summary>The pipe options every connection of one reactor shares.</summary>
internal sealed class ConnectionPipeOptions
{
    public ConnectionPipeOptions(EpollTransportOptions source, EpollReactor reactor)
    {
        Source = source;
        var pool = reactor.MemoryPool;
        MinimumReceiveSize = pool.MaxBufferSize > 0 ? Math.Min(pool.MaxBufferSize, 4096) : 4096;
        var segmentSize = pool.MaxBufferSize > 0 ? pool.MaxBufferSize : 4096;

        // The transport's side of both pipes runs on the reactor; the application's side on the thread pool, or,
        // with inline scheduling, on the reactor thread too.
        var appScheduler = source.UnsafePreferInlineScheduling ? PipeScheduler.Inline : PipeScheduler.ThreadPool;
        // With inline scheduling the application's reads resume through the reactor's work queue, not inside the
        // receive that flushed them: a turn first receives on every ready connection, then runs the application for
        // all of them, then sends. Each stage keeps its code and data hot across the batch (cohort scheduling),
        // and a handler's budget covers its receive, not the application's work.
        var inputReaderScheduler = source.UnsafePreferInlineScheduling ? reactor : PipeScheduler.ThreadPool;
        var maxRead = source.MaxReadBufferSize ?? 0;
        var maxWrite = source.MaxWriteBufferSize ?? 0;
        Input = new PipeOptions(pool, inputReaderScheduler, reactor, maxRead, maxRead / 2, segmentSize, useSynchronizationContext: false);
        Output = new PipeOptions(pool, reactor, appScheduler, maxWrite, maxWrite / 2, segmentSize, useSynchronizationContext: false);
    }

    /// <summary>The transport options these were made from.</summary>
    public EpollTransportOptions Source { get; }

    public PipeOptions Input { get; }

    public PipeOptions Output { get; }

    /// <summary>The least buffer space a receive asks the input pipe for.</summary>
    public int MinimumReceiveSize { get; }
}
