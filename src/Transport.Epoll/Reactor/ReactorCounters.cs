namespace EpollTransport.Reactor;

/// <summary>
/// Per-reactor counters, written by the reactor thread without atomics and read by the metrics callbacks
/// (a torn or stale read only makes one observation slightly old). They live apart from <see cref="ReactorWakeup"/>'s
/// state word, which the threads that post to the reactor write on every post.
/// </summary>
internal sealed class ReactorCounters
{
    public long Waits;

    /// <summary>Eventfd writes: the times a post found the loop blocked or about to block (counted by the loop).</summary>
    public long WakeUps;
    public long Events;
    public long BudgetExhaustions;
    public long ReadWouldBlock;
    public long ReadQueueDrained;

    /// <summary>Unix stream receives shorter than their buffer, which emptied the queue: no EAGAIN recv followed.</summary>
    public long ReadShortDrained;
    public long WriteWouldBlock;
    public long Sends;
    public long SegmentsSent;

    /// <summary>sendfile calls of file regions, the bytes they sent, and the chunks read ahead off the reactor first.</summary>
    public long FileSends;
    public long FileBytesSent;
    public long FileReadAheads;
    public long Accepts;
    public long ReadPauses;

    /// <summary>Connections whose reading is paused now (the application has <c>MaxReadBufferSize</c> unread).</summary>
    public long PausedConnections;
}
