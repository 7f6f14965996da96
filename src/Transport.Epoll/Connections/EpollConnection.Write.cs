using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using EpollTransport.Posix;
using EpollTransport.Reactor;

namespace EpollTransport.Connections;

/// <summary>
/// Sending: write-through from the thread that flushes, the reactor for everything that has to wait.
/// </summary>
/// <remarks>
/// <para>
/// The output pipe resumes its reader inline (unless <see cref="EpollSendMode.Reactor"/>), so the continuation of the
/// transport's <c>ReadAsync</c> runs inside the application's <c>FlushAsync</c>, on the flushing thread. Off the
/// reactor, a write-through connection (<see cref="_writeThrough"/>) takes the write side there and queues the send to
/// that thread's own thread-pool queue: it runs on the same thread as soon as the application's code there returns to
/// the pool, with no eventfd write, no wake-up and no context switch. Any other connection hands the flush to the
/// reactor. On the reactor (inline scheduling, or the reactor's own reads) the bytes are held and sent at the end of
/// the turn, so that a turn's flushes share one sendmsg.
/// </para>
/// <para>
/// Why queued, not inside <c>FlushAsync</c>: Kestrel's HTTP/2 frame writer flushes once per stream it serves, and a
/// burst for ten streams went out in ten sendmsg calls instead of one (on loopback each also carries the peer's
/// receive path). Bench, h2c 64 × 10, 4 rounds, ratio to Sockets: sending inside the flush 0.49, queued 0.99, all on
/// the reactor 0.84.
/// </para>
/// <para>
/// Why HTTP/2 only by default (<see cref="EpollSendMode.Auto"/>): for HTTP/2, write-through needs no eventfd write
/// (0.000 per request against 0.116 with every send on the reactor) and half the sendmsg calls (0.100 per request
/// against 0.202). For HTTP/1.1 on one core it cost more than it saved: every response's send woke another pool
/// worker, and the reactor, left with only the receives, blocked and woke for each request. /json at 256
/// connections, server on one core: 0.39 context switches and 22.7 µs of CPU per request against 0.05 and 17.3 with
/// the reactor sending, whose loop stays busy and batches receives and sends.
/// </para>
/// <para>
/// One atomic word, <see cref="_sendState"/>, says who owns the write side (the output pipe's reader, the held
/// bytes and the right to make a syscall on the fd from off the reactor):
/// <list type="bullet">
/// <item><see cref="SendIdle"/>: a <c>ReadAsync</c> is pending; whoever runs its continuation takes the side with a
/// CAS, so exactly one thread is ever in sendmsg for a connection.</item>
/// <item><see cref="SendFlusher"/>: a flushing thread owns it (its send is queued or running). It sends until the pipe
/// is empty, then reads again and goes back to idle. EAGAIN, a short write, an error or the end of the output hand it to the reactor.</item>
/// <item><see cref="SendReactor"/>: the reactor owns it: before start, while it holds bytes for the end of the turn or
/// the next EPOLLOUT edge, and while a hand-off is queued to it.</item>
/// <item><see cref="SendClosed"/>, a flag: the connection is closed. The reactor sets it in <c>Close</c>; if a flusher
/// owns the side then, the flag tells it to finish the close when it leaves.</item>
/// </list>
/// The word is also the fd's reference count: a flusher's ownership is a reference, and the reactor's <c>Close</c>
/// leaves the <c>close(fd)</c> to a flusher that is inside. So the last one out closes the fd, and a sendmsg from a
/// flushing thread can never reach a number that a new connection was given (see <see cref="ReleaseFlusher"/>).
/// </para>
/// <para>
/// Why hand EAGAIN to the reactor rather than wait for EPOLLOUT on the flushing thread: the reactor already gets every
/// EPOLLOUT edge. It does not trust its own <c>_writable</c> after a hand-off (the edge after the flusher's EAGAIN may
/// have come before the hand-off did) and tries once more: either that sendmsg succeeds, or its EAGAIN is followed by
/// an edge. One extra syscall on a slow path instead of a lost wake-up.
/// </para>
/// </remarks>
internal sealed partial class EpollConnection
{
    private const int SendIdle = 0;
    private const int SendFlusher = 1;
    private const int SendReactor = 2;
    private const int SendClosed = 4;

    /// <summary>Write-through sends before a flusher hands the rest to the reactor: a flusher that finds new bytes
    /// after each send (another thread writing) would otherwise send for that thread indefinitely.</summary>
    private const int WriteThroughRounds = 4;

    private int _sendState = SendReactor;
    private ValueTaskAwaiter<ReadResult> _readAwaiter;

    /// <summary>The held read result. Owned with the write side.</summary>
    private ReadResult _pending;

    /// <summary>Bytes of <see cref="_pending"/> already sent while file regions are interleaved (<see cref="SendWithRegions"/>).</summary>
    private long _pendingSent;

    // Reactor-thread state of the write side.
    private bool _holding;

    /// <summary>What a flusher hands to the reactor; written before the hand-off is queued.</summary>
    private HandOff _handOff;
    private Exception? _handOffError;

    /// <summary>The errno of a failed write-through sendmsg; read by the receive path at end of stream.</summary>
    private int _sendErrno;

    /// <summary>
    /// Write-through for this connection: set from <see cref="EpollSendMode"/>, or by <see cref="OnFirstBytes"/> under
    /// <see cref="EpollSendMode.Auto"/>; read by flushing threads.
    /// </summary>
    private volatile bool _writeThrough;

    /// <summary>The first received bytes have been looked at (<see cref="OnFirstBytes"/>). Reactor thread.</summary>
    private bool _firstBytesSeen;

    /// <summary>The first receives, while they may be a TLS ClientHello that has not ended yet. Reactor thread.</summary>
    private TlsClientHello.Sniffer _hello;

    /// <summary>What the output pipe's reader completes with; written by <c>Close</c> before it sets
    /// <see cref="SendClosed"/>, read by whoever completes the reader.</summary>
    private Exception? _outputCompletion;

    private enum HandOff : byte
    {
        /// <summary>The socket is full or the send was short: the reactor reads the pipe again and sends.</summary>
        Send,

        /// <summary>The application completed its output and all of it is sent: FIN.</summary>
        Complete,

        /// <summary>sendmsg failed: <see cref="_sendErrno"/>.</summary>
        SendError,

        /// <summary>Reading the pipe threw: <see cref="_handOffError"/>.</summary>
        ReadError,
    }

    /// <summary>Waits for the application's next flush. The reactor owns the write side. Reactor thread.</summary>
    private void StartOutputRead()
    {
        ValueTask<ReadResult> read;
        try
        {
            read = _output.Reader.ReadAsync();
            if (read.IsCompleted)
            {
                Hold(read.GetAwaiter().GetResult());
                return;
            }
        }
        catch (Exception ex)
        {
            FailOutput(ex);
            return;
        }

        _readAwaiter = read.GetAwaiter();
        // Only the reactor sets Closed, and it is here: a plain write is enough. From this write on, the continuation
        // may run on any thread that flushes, even before the registration below returns.
        Volatile.Write(ref _sendState, SendIdle);
        _readAwaiter.UnsafeOnCompleted(_onOutputReadable);
    }

    /// <summary>
    /// The continuation of the transport's <c>ReadAsync</c>: on the thread that flushed (or completed) the output, or
    /// on the reactor. Never throws: off the reactor it runs inside the application's <c>FlushAsync</c>.
    /// </summary>
    private void OnOutputReadable()
    {
        if (_reactor.IsOnReactorThread)
        {
            if (Interlocked.CompareExchange(ref _sendState, SendReactor, SendIdle) == SendIdle)
            {
                HoldOnReactor();
            }
            return;
        }

        if (!_writeThrough)
        {
            if (Interlocked.CompareExchange(ref _sendState, SendReactor, SendIdle) != SendIdle)
            {
                return;
            }
            _reactor.Schedule(static state => ((EpollConnection)state!).HoldOnReactor(), this);
            return;
        }
        if (Interlocked.CompareExchange(ref _sendState, SendFlusher, SendIdle) != SendIdle)
        {
            // Closed: the reactor completed the reader and closed the fd.
            return;
        }
        // Not now: at the end of what this thread is doing. The local queue of a thread-pool thread is LIFO and its
        // own, so the send runs on this thread (unless an idle one steals it) once the application's code returns to
        // the pool, and every flush made until then goes out in the same sendmsg (see the remarks).
        ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: true);
    }

    /// <summary>
    /// The reactor owns the write side for a flush (made on it, or handed to it by a flush that does not write through):
    /// hold the bytes for the end of the turn, unless the connection closed meanwhile. Reactor thread.
    /// </summary>
    private void HoldOnReactor()
    {
        if (Volatile.Read(ref _sendState) != SendReactor)
        {
            return;
        }
        ReadResult result;
        try
        {
            result = _readAwaiter.GetResult();
        }
        catch (Exception ex)
        {
            FailOutput(ex);
            return;
        }
        Hold(result);
    }

    /// <summary>The write-through send, queued by <see cref="OnOutputReadable"/>; the flusher owns the write side.</summary>
    void IThreadPoolWorkItem.Execute() => WriteThrough();

    /// <summary>Sends on the flushing thread until the pipe is empty, then reads again. The flusher owns the write side.</summary>
    private void WriteThrough()
    {
        ReadResult result;
        try
        {
            result = _readAwaiter.GetResult();
        }
        catch (Exception ex)
        {
            HandToReactor(HandOff.ReadError, ex);
            return;
        }

        var counters = _reactor.WriteThroughCounters;
        for (int round = 1; ; round++)
        {
            var buffer = result.Buffer;
            while (!buffer.IsEmpty)
            {
                if (Volatile.Read(ref _sendState) != SendFlusher)
                {
                    // Closed while this flusher was queued or sending: send nothing more.
                    ReleaseFlusher(SendIdle);
                    return;
                }
                _reactor.Observer?.BeforeWriteThrough(this);
                var sent = IOVectorBatch.Send(_fd, buffer, out var segments);
                counters.Count(segments);
                if (sent.IsSuccess)
                {
                    _pipeSent += sent.Value;
                }
                if (!sent.IsSuccess)
                {
                    if (sent.WouldBlock)
                    {
                        counters.CountWouldBlock();
                        _output.Reader.AdvanceTo(buffer.Start);
                        HandToReactor(HandOff.Send);
                        return;
                    }
                    // Published at once: a reset taken by this sendmsg is no longer there for the reactor's recv.
                    Volatile.Write(ref _sendErrno, sent.Errno);
                    HandToReactor(HandOff.SendError);
                    return;
                }
                if (sent.Value == buffer.Length)
                {
                    break;
                }
                buffer = buffer.Slice(sent.Value);
                if (segments < IOVectorBatch.MaxVectors)
                {
                    // Short of what was gathered: the socket buffer is full. The reactor finishes on EPOLLOUT.
                    _output.Reader.AdvanceTo(buffer.Start);
                    HandToReactor(HandOff.Send);
                    return;
                }
                // Short only because one sendmsg gathers at most MaxVectors segments: send on.
            }

            ValueTask<ReadResult> read;
            try
            {
                _output.Reader.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted)
                {
                    HandToReactor(HandOff.Complete);
                    return;
                }
                read = _output.Reader.ReadAsync();
                if (read.IsCompleted)
                {
                    // More was flushed while this thread sent: send it too, within the limit.
                    if (round == WriteThroughRounds)
                    {
                        _output.Reader.AdvanceTo(read.GetAwaiter().GetResult().Buffer.Start);
                        HandToReactor(HandOff.Send);
                        return;
                    }
                    result = read.GetAwaiter().GetResult();
                    continue;
                }
            }
            catch (Exception ex)
            {
                HandToReactor(HandOff.ReadError, ex);
                return;
            }

            _readAwaiter = read.GetAwaiter();
            if (!ReleaseFlusher(SendIdle))
            {
                return;
            }
            // Released first: a flush that lands before the registration runs the continuation from inside it, on this
            // thread, and that continuation must find the side idle.
            _readAwaiter.UnsafeOnCompleted(_onOutputReadable);
            return;
        }
    }

    /// <summary>
    /// The flusher leaves the write side to <paramref name="next"/>. False: the connection closed while it was inside,
    /// so it has finished the close (completed the reader, closed the fd) and must touch nothing more.
    /// </summary>
    private bool ReleaseFlusher(int next)
    {
        if (Interlocked.CompareExchange(ref _sendState, next, SendFlusher) == SendFlusher)
        {
            return true;
        }
        // Close ran on the reactor meanwhile and left the last two steps to this thread: its sendmsg calls are over, so
        // the fd's number can go back to the kernel.
        _pending = default;
        _output.Reader.Complete(_outputCompletion);
        ReleaseFd();
        return false;
    }

    /// <summary>A flusher gives the write side to the reactor, with what is left to do.</summary>
    private void HandToReactor(HandOff what, Exception? error = null)
    {
        _handOff = what;
        _handOffError = error;
        if (!ReleaseFlusher(SendReactor))
        {
            return;
        }
        _reactor.WriteThroughCounters.CountHandOff();
        // The post publishes the fields above to the reactor (the queue's enqueue is a full fence).
        _reactor.Schedule(static state => ((EpollConnection)state!).OnHandOff(), this);
    }

    /// <summary>The reactor takes over from a flusher. Reactor thread.</summary>
    private void OnHandOff()
    {
        if (Volatile.Read(ref _sendState) != SendReactor)
        {
            // Closed after the hand-off: Close found the side the reactor's and finished everything.
            return;
        }
        switch (_handOff)
        {
            case HandOff.Send:
                // The edge after the flusher's EAGAIN may have come before this: try once more (see the remarks).
                _writable = true;
                if (_output.Reader.TryRead(out var rest))
                {
                    Hold(rest);
                }
                else
                {
                    StartOutputRead();
                }
                break;
            case HandOff.Complete:
                Close(null, reset: false);
                break;
            case HandOff.SendError:
                OnSendError(_sendErrno);
                break;
            default:
                FailOutput(_handOffError!);
                break;
        }
    }

    private void Hold(in ReadResult result)
    {
        _pending = result;
        _pendingSent = 0;
        _holding = true;
        // Deferred to the end of the turn, so that everything the application flushes in this turn goes out in
        // one sendmsg. While not writable the EPOLLOUT edge queues it.
        if (_writable)
        {
            _reactor.QueueSend(this);
        }
    }

    /// <summary>One sendmsg of what is held. Reactor thread, end of the turn.</summary>
    private void Send()
    {
        if (!_holding || !_writable)
        {
            return;
        }

        if (_pendingSent != 0 || HasRegions)
        {
            SendWithRegions();
            return;
        }

        var buffer = _pending.Buffer;
        if (buffer.IsEmpty)
        {
            AfterSend(buffer.End, completed: _pending.IsCompleted);
            return;
        }

        var result = IOVectorBatch.Send(_fd, buffer, out var count);
        _reactor.Counters.Sends++;
        _reactor.Counters.SegmentsSent += count;

        if (result.IsSuccess)
        {
            _pipeSent += result.Value;
            if (result.Value == buffer.Length)
            {
                AfterSend(buffer.End, completed: _pending.IsCompleted);
                return;
            }
            // A short write (or more segments than one sendmsg takes): keep the rest and try again next turn;
            // only EAGAIN says the socket buffer is full.
            var completed = _pending.IsCompleted;
            _holding = false;
            _pending = default;
            _output.Reader.AdvanceTo(buffer.GetPosition(result.Value));
            if (_output.Reader.TryRead(out var rest))
            {
                Hold(rest);
            }
            else if (completed)
            {
                Close(null, reset: false);
            }
            else
            {
                StartOutputRead();
            }
            return;
        }

        if (result.WouldBlock)
        {
            OnSocketFull();
            return;
        }
        OnSendError(result.Errno);
    }

    private void OnSendError(int errno) => Close(ConnectionFailure(errno), reset: false);

    /// <summary>A send found the socket buffer full (EAGAIN): wait for the EPOLLOUT edge.</summary>
    private void OnSocketFull()
    {
        _writable = false;
        _reactor.Counters.WriteWouldBlock++;
        _reactor.Observer?.OnWriteWouldBlock(this);
    }

    private void AfterSend(SequencePosition end, bool completed)
    {
        _output.Reader.AdvanceTo(end);
        _pending = default;
        _holding = false;
        if (completed)
        {
            // The application completed its output and all of it is sent: FIN, as Sockets does.
            Close(null, reset: false);
            return;
        }
        StartOutputRead();
    }

    private void FailOutput(Exception error)
    {
        EpollTransportLog.ConnectionError(_logger, this, error);
        Close(error, reset: false);
    }
}
