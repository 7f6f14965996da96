using System.IO.Pipelines;
using EpollTransport.Reactor;

namespace EpollTransport.Connections;

/// <summary>The pipe options every connection of one reactor shares; they decide where each side resumes.</summary>
/// <remarks>
/// Where each await of a connection's pipes resumes, by scheduling mode (default: the thread pool; inline:
/// <see cref="EpollTransportOptions.UnsafePreferInlineScheduling"/>). "Work queue" means the reactor's queue: run on
/// the reactor thread in the same turn when posted from it, after a wake-up when posted from another thread.
/// <list type="table">
/// <listheader><term>who awaits what</term><description>default / inline</description></listheader>
/// <item><term>the application, input <c>ReadAsync</c></term><description>thread pool / work queue: the receives of
/// every ready connection come first, then the application runs for all of them.</description></item>
/// <item><term>the transport, output <c>ReadAsync</c> (the next flush to send)</term><description>inline in both modes,
/// inside the application's <c>FlushAsync</c>: off the reactor a write-through connection queues its send to that
/// thread's own pool queue, any other hands the flush to the reactor; on the reactor the send follows at the end of
/// the turn. With <see cref="EpollSendMode.Reactor"/>: work queue, and the send at the end of that turn.</description></item>
/// <item><term>the transport, input <c>FlushAsync</c> paused by <c>MaxReadBufferSize</c></term><description>work
/// queue in both modes, posted by the application's <c>AdvanceTo</c>.</description></item>
/// <item><term>the application, output <c>FlushAsync</c> paused by <c>MaxWriteBufferSize</c></term><description>
/// thread pool / inline: inside the <c>AdvanceTo</c> with which a send releases the bytes it sent: on the reactor
/// (<c>EpollConnection.Send</c> after a short write, <c>AfterSend</c> after a whole one, at the end of the turn) or on
/// the thread of a write-through. The application runs before that send returns; what it flushes there is read by the
/// transport's next read and sent in the next turn (or in the write-through's next round).</description></item>
/// </list>
/// </remarks>
internal sealed class ConnectionPipeOptions
{
    public ConnectionPipeOptions(EpollTransportOptions source, EpollReactor reactor)
    {
        Source = source;
        var pool = reactor.MemoryPool;
        MinimumReceiveSize = pool.MaxBufferSize > 0 ? Math.Min(pool.MaxBufferSize, 4096) : 4096;
        var segmentSize = pool.MaxBufferSize > 0 ? pool.MaxBufferSize : 4096;

        var appScheduler = source.UnsafePreferInlineScheduling ? PipeScheduler.Inline : PipeScheduler.ThreadPool;
        // With inline scheduling the application's reads resume through the reactor's work queue, not inside the
        // receive that flushed them: a turn first receives on every ready connection, then runs the application for
        // all of them, then sends. Each stage keeps its code and data hot across the batch (cohort scheduling),
        // and a handler's budget covers its receive, not the application's work.
        var inputReaderScheduler = source.UnsafePreferInlineScheduling ? reactor : PipeScheduler.ThreadPool;
        var maxRead = source.MaxReadBufferSize ?? 0;
        var maxWrite = source.MaxWriteBufferSize ?? 0;
        Input = new PipeOptions(pool, inputReaderScheduler, reactor, maxRead, maxRead / 2, segmentSize, useSynchronizationContext: false);
        // Write-through: the transport's read of the output resumes on the thread that flushed, which sends itself
        // (EpollConnection.Write.cs), or hands it to the reactor; with EpollSendMode.Reactor it resumes on the reactor,
        // as every other transport-side await.
        var outputReaderScheduler = source.SendMode == EpollSendMode.Reactor ? reactor : PipeScheduler.Inline;
        Output = new PipeOptions(pool, outputReaderScheduler, appScheduler, maxWrite, maxWrite / 2, segmentSize, useSynchronizationContext: false);
    }

    /// <summary>The transport options these were made from.</summary>
    public EpollTransportOptions Source { get; }

    public PipeOptions Input { get; }

    public PipeOptions Output { get; }

    /// <summary>The least buffer space a receive asks the input pipe for.</summary>
    public int MinimumReceiveSize { get; }
}
