using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using EpollTransport.Interop;
using EpollTransport.Posix;

namespace EpollTransport.Connections;

internal sealed partial class EpollConnection
{
    private ValueTaskAwaiter<FlushResult> _flushAwaiter;

    /// <summary>
    /// Receives until EAGAIN (or the kernel's word that the queue is empty, see <see cref="PosixIO.ReceiveMessage"/>),
    /// FIN, an error, or the per-turn budget. Returns true when the budget was spent with
    /// the socket still readable (the reactor keeps the connection on the ready list). Reactor thread.
    /// </summary>
    private bool Receive()
    {
        var writer = _input.Writer;
        int received = 0;
        while (true)
        {
            // Memory is taken only once the socket is readable: an idle connection holds no receive buffer.
            var memory = writer.GetMemory(_minReceiveSize);
            PosixResult result;
            int queued = -1;
            result = _reportsQueue
                ? PosixIO.ReceiveMessage(_fd, memory.Span, out queued)
                : PosixIO.Receive(_fd, memory.Span);

            if (result.IsSuccess)
            {
                if (result.Value == 0)
                {
                    _readable = false;
                    EpollTransportLog.ConnectionReadFin(_logger, this);
                    // A write-through sendmsg may have taken the socket's pending reset (the kernel reports it once,
                    // and a recv after it sees end of stream): the input must still end with the reset.
                    var sendErrno = Volatile.Read(ref _sendErrno);
                    CompleteInput(sendErrno != 0 && Errnos.IsConnectionReset(sendErrno) ? ConnectionFailure(sendErrno) : null);
                    return false;
                }
                if (!_firstBytesSeen)
                {
                    OnFirstBytes(memory.Span[..result.IntValue]);
                }
                writer.Advance(result.IntValue);
                received += result.IntValue;
                if (queued == 0 && !_hangUp)
                {
                    // TCP_INQ: the kernel says the receive queue is empty (and holds no FIN), so the next recv would
                    // be EAGAIN. Clearing the flag now saves that syscall; bytes that arrive later raise a new edge.
                    // Not after EPOLLHUP/EPOLLERR: TCP_INQ does not count a pending reset, whose one edge came with
                    // these bytes; only reading on to the ECONNRESET ends the connection.
                    _readable = false;
                    _reactor.Counters.ReadQueueDrained++;
                    break;
                }
                if (_unixStream && result.IntValue < memory.Length && !_hangUp)
                {
                    // A Unix stream receive copies until the queue is empty or the buffer full, so a short one emptied
                    // the queue; and every later arrival wakes epoll again (sock_def_readable), a new edge. So the
                    // EAGAIN recv that would follow is skipped, as TCP_INQ lets TCP skip it. It stops early only
                    // before out-of-band data (MSG_OOB), or between writers with SO_PASSCRED, which the transport
                    // never sets: a peer that sends OOB bytes stalls its own connection until it writes again.
                    _readable = false;
                    _reactor.Counters.ReadShortDrained++;
                    break;
                }
                if (received >= _readBudget)
                {
                    break;
                }
                continue;
            }

            if (result.WouldBlock)
            {
                // With edge-triggered epoll, stopping before EAGAIN (or the kernel's TCP_INQ word that the queue is
                // empty) without staying on the ready list would wait for an edge that never comes.
                _readable = false;
                _reactor.Counters.ReadWouldBlock++;
                break;
            }
            _readable = false;
            OnReceiveError(result.Errno);
            return false;
        }

        return received > 0 && FlushInput() && _readable;
    }

    /// <summary>Hands received bytes to the application. Returns false when reading must stop for now.</summary>
    private bool FlushInput()
    {
        var flush = _input.Writer.FlushAsync();
        if (flush.IsCompletedSuccessfully)
        {
            var result = flush.Result;
            if (result.IsCompleted || result.IsCanceled)
            {
                // The application completed its input: stop reading, as Sockets does.
                CompleteInput(null);
                return false;
            }
            return _readState == ReadState.Active;
        }

        _readState = ReadState.Paused;
        _reactor.Counters.ReadPauses++;
        _reactor.Counters.PausedConnections++;
        _reactor.Observer?.OnReadPaused(this);
        _flushAwaiter = flush.GetAwaiter();
        // Made on first use: most connections never fill MaxReadBufferSize, and an idle one should cost little.
        _flushAwaiter.UnsafeOnCompleted(_onInputFlushed ??= OnInputFlushed);
        return false;
    }

    /// <summary>The application drained the input pipe below the resume threshold. Runs on the reactor.</summary>
    private void OnInputFlushed()
    {
        if (_readState != ReadState.Paused)
        {
            return;
        }

        FlushResult result;
        try
        {
            result = _flushAwaiter.GetResult();
        }
        catch (Exception)
        {
            CompleteInput(null);
            return;
        }
        if (result.IsCompleted || result.IsCanceled)
        {
            CompleteInput(null);
            return;
        }

        _readState = ReadState.Active;
        _reactor.Counters.PausedConnections--;
        // The edge that announced the bytes still in the socket was consumed before the pause: no new one will
        // come for them, so resume from the flag, not from epoll.
        if (_readable)
        {
            _reactor.SetReady(this);
        }
    }

    /// <summary>The HTTP/2 connection preface (RFC 9113, 3.4), up to the version: what a cleartext HTTP/2 client sends first.</summary>
    private static ReadOnlySpan<byte> Http2Preface => "PRI * HTTP/2.0\r\n"u8;

    /// <summary>
    /// <see cref="EpollSendMode.Auto"/> picks write-through for HTTP/2: a cleartext connection whose first bytes are the
    /// HTTP/2 preface, or a TLS connection whose ClientHello offers <c>h2</c> by ALPN (<see cref="TlsClientHello"/>).
    /// Both are known before the server's first send: the server cannot answer a ClientHello it has not read whole.
    /// A ClientHello split across receives is kept until it ends (<see cref="_hello"/>). Reactor thread; called
    /// for each receive until <see cref="_firstBytesSeen"/>.
    /// </summary>
    /// <remarks>
    /// Kestrel's own ALPN feature is no substitute: it is set before the handshake ends, and reading it from a
    /// flushing thread during the handshake broke TLS when tried.
    /// </remarks>
    private void OnFirstBytes(ReadOnlySpan<byte> received)
    {
        if (!_hello.Started && received.StartsWith(Http2Preface))
        {
            // HTTP/2 also refuses file regions (IEpollFileRegionFeature): its frames from other streams share the output.
            _http2 = true;
            _writeThrough |= _sendMode == EpollSendMode.Auto;
            _firstBytesSeen = true;
            return;
        }
        if (_sendMode != EpollSendMode.Auto)
        {
            _firstBytesSeen = true;
            return;
        }
        var verdict = _hello.Feed(received, TlsClientHello.H2);
        if (verdict != TlsClientHello.Verdict.NeedMore)
        {
            _writeThrough = verdict == TlsClientHello.Verdict.Offers;
            _firstBytesSeen = true;
        }
    }

    private void OnReceiveError(int errno) => CompleteInput(ConnectionFailure(errno));

    /// <summary>Ends the input side once: completes the pipe and fires <see cref="ConnectionClosed"/>.</summary>
    private void CompleteInput(Exception? error)
    {
        if (_readState == ReadState.Done)
        {
            return;
        }
        if (_readState == ReadState.Paused)
        {
            _reactor.Counters.PausedConnections--;
        }
        _readState = ReadState.Done;
        _input.Writer.Complete(error);
        // Kestrel learns that the client went away from this token (Sockets fires it when its receive loop ends).
        FireConnectionClosed();
    }
}
