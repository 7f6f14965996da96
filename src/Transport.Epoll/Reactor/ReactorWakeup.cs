using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using EpollTransport.Interop;
using EpollTransport.Posix;

namespace EpollTransport.Reactor;

/// <summary>
/// The handshake between a reactor and the threads that post work to it: when a post must write the eventfd
/// (only when the loop is blocked or about to block), and when the loop may close it (only when no post is in
/// flight). A write to the eventfd costs microseconds (a syscall and a cross-core wake-up), as much as serving a
/// small request, so it is paid only when the loop is really blocked or about to block.
/// </summary>
/// <remarks>
/// One state word: bit 0 <c>Blocking</c>, bit 1 <c>Closed</c>, and above them the number of producers in flight.
/// <para>
/// Blocking follows Dekker's protocol: each side publishes, then looks at the other side's variable, with a full
/// fence in between (both the work queue's enqueue and <see cref="Interlocked"/> operations are full fences).
/// <list type="bullet">
/// <item>Producer (<see cref="Wake"/>): enqueue the work item; then, if <c>Blocking</c> is set, CAS it clear and, if
/// the CAS won, write the eventfd. Only the winner writes, so a burst of producers costs one write.</item>
/// <item>Loop (<see cref="BlockUnlessWorkQueued"/>): set <c>Blocking</c>; then look at the queue once more. If work
/// arrived, it does not block (timeout 0). Otherwise it blocks, and any producer that enqueues from now on sees
/// <c>Blocking</c> and wakes it.</item>
/// </list>
/// A wake-up is never lost: either the producer sees <c>Blocking</c> (and writes), or the loop sees the item
/// (and does not block). A spurious write (the loop found the item itself) only costs one extra turn.
/// </para>
/// <para>
/// Shutdown: a producer enters (counts itself in) before it looks at <c>Closed</c>, and leaves only after its
/// enqueue and its write. The loop sets <c>Closed</c>, then waits for the count to reach zero, then drains its queue
/// a last time and closes the eventfd. So a producer either saw <c>Closed</c> (and enqueued nothing) or is waited
/// for: its item is in the queue before the last drain, and its write lands on the eventfd, never on an fd that
/// took the number after the close. With the count and <c>Closed</c> in one word, a producer's entering is also its
/// look at <c>Closed</c> (one atomic add), and the loop's closing is also its first look at the count.
/// </para>
/// <para>
/// Cache lines: the state word is written by producers on other threads, on every post; the loop writes it only as
/// it blocks and wakes. So it sits alone on its line with the one counter producers keep (<see cref="Avoided"/>,
/// written right after their atomic on the word, while they hold the line anyway). The wake-ups are counted by the
/// loop, which knows of each one (it finds <c>Blocking</c> cleared by a producer), in its own
/// <see cref="ReactorCounters"/>: a counter the loop writes must not share the producers' line.
/// </para>
/// <para>
/// Cost: entering and leaving are two more atomic adds per post from another thread, on the line the post writes
/// anyway, so they add no new cache-line traffic.
/// Measured on 2 shared cores, 2 million no-op posts per thread from 1 and 2 threads, 4 runs each: 14–123 ns a post
/// before, 39–132 ns after; the spread between runs is larger than the difference, whose best case (one producer,
/// 14 → 39 ns) is the two atomics. A post that runs a pipe continuation serves a request of several microseconds
/// (an estimate from those figures, not a measurement under load); the reactor's own posts (most of them with
/// inline scheduling) skip the count. A guard
/// around the write alone (a reference-counted eventfd) would cost the same two atomics on the posts that write,
/// but it could not tell a producer that its item will never run.
/// </para>
/// </remarks>
internal sealed class ReactorWakeup : IDisposable
{
    private const int Blocking = 1;
    private const int Closed = 2;
    private const int Producer = 4;
    private const int ProducerMask = ~(Blocking | Closed);
    private const int PaddedLine = 128;

    private readonly int _eventFd;
    private readonly ReactorCounters _counters;
    private ProducerLine _producers;

    /// <param name="counters">The loop's counters, where it counts the wake-ups it receives.</param>
    public ReactorWakeup(ReactorCounters counters)
    {
        _counters = counters;
        var result = EpollInterop.CreateEventFd();
        if (!result.IsSuccess)
        {
            throw SocketErrors.ToSocketException(result.Errno);
        }
        _eventFd = result.IntValue;
    }

    public int EventFd => _eventFd;

    /// <summary>Any thread: the loop is blocked in <c>epoll_wait</c> or about to block (a stale answer is possible).</summary>
    public bool IsBlocking => (Volatile.Read(ref _producers.State) & Blocking) != 0;

    /// <summary>
    /// Posts from other threads that found the loop awake and needed no write (read by the metrics; racy increments
    /// are acceptable).
    /// </summary>
    public long Avoided => Volatile.Read(ref _producers.Avoided);

    /// <summary>
    /// Test hook: runs on a producer that won the right to write the eventfd, just before the write, so that a test can
    /// hold it there. Never set in production (one null test on a path that makes a system call anyway).
    /// </summary>
    public Action? WriteObserver { get; set; }

    /// <summary>
    /// Test hook: runs on the loop when it closes with producers still in flight, before it waits for them. Never set
    /// in production (shutdown only).
    /// </summary>
    public Action? CloseObserver { get; set; }

    /// <summary>
    /// Loop side, its whole half of the handshake: one <c>epoll_wait</c> on <paramref name="epollFd"/> that blocks
    /// (for <paramref name="idleTimeout"/>) only if <paramref name="work"/> is still empty after the loop has said it
    /// is about to block, and otherwise only polls. Any post made from that moment on writes the eventfd, so no
    /// queued item waits out the timeout.
    /// </summary>
    /// <param name="events">The loop's event buffer, which the wait fills.</param>
    /// <param name="epollFd">The loop's epoll fd, in whose set this eventfd is registered.</param>
    /// <param name="work">The loop's work queue, which producers fill before they call <see cref="Wake"/>.</param>
    /// <param name="idleTimeout">Milliseconds to block when no work is queued; -1 for no limit.</param>
    public PosixResult BlockUnlessWorkQueued<T>(EpollEventBuffer events, int epollFd, ConcurrentQueue<T> work, int idleTimeout)
    {
        if (work.IsEmpty)
        {
            // The Or is a full fence: an item enqueued before it is seen by the look below; a producer that enqueues
            // after it sees Blocking and writes.
            Interlocked.Or(ref _producers.State, Blocking);
            if (work.IsEmpty)
            {
                var result = events.Wait(epollFd, idleTimeout);
                SetAwake();
                return result;
            }
            SetAwake();
        }
        return events.Wait(epollFd, 0);
    }

    /// <summary>Clears <c>Blocking</c>, or counts the wake-up of the producer that cleared it (and writes the eventfd).</summary>
    private void SetAwake()
    {
        // A producer that cleared the bit needs no atomic here; the And's old value tells a producer that cleared it
        // between the read and the And.
        if ((Volatile.Read(ref _producers.State) & Blocking) == 0
            || (Interlocked.And(ref _producers.State, ~Blocking) & Blocking) == 0)
        {
            _counters.WakeUps++;
        }
    }

    /// <summary>
    /// Producer side, before enqueueing: counts the producer in, or returns false once the loop has closed. After
    /// true the caller enqueues, calls <see cref="Wake"/> and then <see cref="Exit"/>, whatever happens.
    /// </summary>
    public bool TryEnter()
    {
        if ((Interlocked.Add(ref _producers.State, Producer) & Closed) == 0)
        {
            return true;
        }
        Interlocked.Add(ref _producers.State, -Producer);
        return false;
    }

    /// <summary>Producer side: the post is complete; the loop may close once every producer has left.</summary>
    public void Exit() => Interlocked.Add(ref _producers.State, -Producer);

    /// <summary>Producer side, between <see cref="TryEnter"/> and <see cref="Exit"/>: called after enqueueing.</summary>
    public void Wake()
    {
        var state = Volatile.Read(ref _producers.State);
        while ((state & Blocking) != 0)
        {
            var seen = Interlocked.CompareExchange(ref _producers.State, state & ~Blocking, state);
            if (seen == state)
            {
                WriteObserver?.Invoke();
                EpollInterop.SignalEventFd(_eventFd);
                return;
            }
            // Another producer came or went (or cleared the bit): look again.
            state = seen;
        }
        _producers.Avoided++;
    }

    /// <summary>
    /// Loop side, at shutdown: refuses producers from now on and waits until those in flight have left, so that their
    /// items are in the queue and their writes done. The caller then drains the queue and disposes.
    /// </summary>
    public void Close()
    {
        if ((Interlocked.Or(ref _producers.State, Closed) & ProducerMask) == 0)
        {
            return;
        }
        CloseObserver?.Invoke();
        // A producer is in for an enqueue and at most one write: a few microseconds unless it was preempted, and
        // SpinWait falls back to yielding and sleeping for that case. The loop is exiting; it serves no one while
        // it waits.
        var spinner = new SpinWait();
        while ((Volatile.Read(ref _producers.State) & ProducerMask) != 0)
        {
            spinner.SpinOnce();
        }
    }

    /// <summary>Loop side: reset the eventfd counter after it was reported readable.</summary>
    public void Drain() => EpollInterop.DrainEventFd(_eventFd);

    /// <summary>Closes the eventfd: after <see cref="Close"/>, or before any producer could see this instance.</summary>
    public void Dispose() => PosixIO.Close(_eventFd);

    /// <summary>
    /// The state word and the counter producers write with it, padded so that nothing else shares their cache line
    /// (128 bytes: the adjacent-line prefetcher of x86-64 moves lines in pairs).
    /// </summary>
    [StructLayout(LayoutKind.Explicit, Size = 3 * PaddedLine)]
    private struct ProducerLine
    {
        [FieldOffset(PaddedLine)]
        public int State;

        [FieldOffset(PaddedLine + sizeof(long))]
        public long Avoided;
    }
}
