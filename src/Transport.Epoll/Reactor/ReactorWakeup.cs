using EpollTransport.Interop;

namespace EpollTransport.Reactor;

/// <summary>
/// The handshake between a reactor that is about to block in <c>epoll_wait</c> and the threads that post work to
/// it. A write to the eventfd costs microseconds (a syscall and a cross-core wake-up), as much as serving a small
/// request, so it is paid only when the loop is really blocked or about to block.
/// </summary>
/// <remarks>
/// The protocol is Dekker's: each side publishes, then looks at the other side's variable, with a full fence in
/// between (both the work queue's enqueue and <see cref="Interlocked"/> operations are full fences).
/// <list type="bullet">
/// <item>Producer: enqueue the work item; then, if the state is <c>Blocking</c>, CAS it to <c>Awake</c> and, if
/// the CAS won, write the eventfd. Only the winner writes, so a burst of producers costs one write.</item>
/// <item>Loop: exchange the state to <c>Blocking</c>; then look at the queue once more. If work arrived, it does
/// not block (timeout 0). Otherwise it blocks, and any producer that enqueues from now on sees
/// <c>Blocking</c> and wakes it.</item>
/// </list>
/// A wake-up is never lost: either the producer sees <c>Blocking</c> (and writes), or the loop sees the item
/// (and does not block). A spurious write (the loop found the item itself) only costs one extra turn.
/// </remarks>
internal sealed unsafe class ReactorWakeup : IDisposable
{
    private const int Awake = 0;
    private const int Blocking = 1;

    private readonly int _eventFd;
    private int _state;

    public ReactorWakeup()
    {
        var result = EpollInterop.CreateEventFd();
        if (!result.IsSuccess)
        {
            throw Errnos.ToSocketException(result.Errno);
        }
        _eventFd = result.IntValue;
    }

    public int EventFd => _eventFd;

    /// <summary>Wake-ups written to the eventfd (read by the metrics; racy increments are acceptable).</summary>
    public long Sent;

    /// <summary>Posts that found the loop awake and needed no write.</summary>
    public long Avoided;

    /// <summary>Loop side: announce that the loop is about to block. The caller must re-check its queue after.</summary>
    public void PrepareToBlock() => Interlocked.Exchange(ref _state, Blocking);

    /// <summary>Loop side: the loop is running again (it returned from epoll_wait, or decided not to block).</summary>
    public void SetAwake() => Volatile.Write(ref _state, Awake);

    /// <summary>Producer side: called after enqueueing work for the loop.</summary>
    public void Wake()
    {
        if (Volatile.Read(ref _state) == Blocking && Interlocked.CompareExchange(ref _state, Awake, Blocking) == Blocking)
        {
            ulong one = 1;
            // EAGAIN means the counter is saturated: a wake-up is pending anyway.
            SocketInterop.Write(_eventFd, (byte*)&one, sizeof(ulong));
            Sent++;
        }
        else
        {
            Avoided++;
        }
    }

    /// <summary>Loop side: reset the eventfd counter after it was reported readable.</summary>
    public void Drain()
    {
        ulong value;
        SocketInterop.Read(_eventFd, (byte*)&value, sizeof(ulong));
    }

    public void Dispose() => SocketInterop.Close(_eventFd);
}
