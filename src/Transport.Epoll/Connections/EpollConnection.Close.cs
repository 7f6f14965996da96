using EpollTransport.Interop;
using EpollTransport.Posix;
using Microsoft.AspNetCore.Connections;

namespace EpollTransport.Connections;

internal sealed partial class EpollConnection
{
    private ConnectionAbortedException? _abortReason;
    private int _abortRequested;
    private int _closedTokenFired;
    private bool _closed;

    /// <summary>
    /// Aborts the connection from any thread. With a reason the peer gets RST (pending output is dropped); with
    /// <see langword="null"/> it gets FIN. Either way the application's pipes complete with the reason.
    /// </summary>
    /// <remarks>
    /// <see langword="null"/> despite the annotation: <see cref="ConnectionContext.Abort()"/> always passes a reason,
    /// but Kestrel's HTTP/1.x connection passes <see langword="null"/> when the client's FIN or the end of the output
    /// ends the connection gracefully (<c>Http1Connection.OnInputOrOutputCompleted</c>, unless Kestrel's
    /// <c>FinOnError</c> switch is on), and a client that sent FIN and stopped reading must then get FIN, not RST.
    /// </remarks>
    public override void Abort(ConnectionAbortedException abortReason)
    {
        if (Interlocked.Exchange(ref _abortRequested, 1) != 0)
        {
            return;
        }
        _abortReason = abortReason;
        _reactor.Schedule(static state =>
        {
            var connection = (EpollConnection)state!;
            var reason = connection._abortReason;
            EpollTransportLog.ConnectionAborted(connection._logger, connection, reason?.Message ?? "no reason (graceful)");
            connection.Close(reason ?? new ConnectionAbortedException("The connection was aborted without a reason."), reset: reason is not null);
        }, this);
    }

    /// <summary>
    /// Closes the socket exactly once and completes both transport-side pipes. Reactor thread.
    /// <paramref name="reason"/> <see langword="null"/> means the output completed gracefully.
    /// </summary>
    private void Close(Exception? reason, bool reset)
    {
        if (_closed)
        {
            return;
        }
        _closed = true;

        var shutdownReason = reason ?? new ConnectionAbortedException("The epoll transport's send loop completed gracefully.");
        if (reset)
        {
            // SO_LINGER {1, 0}: close() discards unsent data and sends RST.
            SocketInterop.SetLingerZero(_fd);
        }
        else
        {
            EpollTransportLog.ConnectionWriteFin(_logger, this, shutdownReason.Message);
            SocketInterop.Shutdown(_fd, SocketInterop.SHUT_RDWR);
        }

        _reactor.Unregister(this);
        _reactor.RemoveAssignedConnection();
        _holding = false;
        // Like Sockets: a reset or abort reaches the application through its input and ConnectionClosed; Kestrel
        // expects output flushes to end by completion, and would log any other exception as unexpected.
        _outputCompletion = reason is null or ConnectionAbortedException or ConnectionResetException ? null : reason;
        // Regions not sent release their files before ConnectionClosed can fire (ReleaseFd signals it), so that whoever
        // waits for it finds the files closed; a flush waiting for them ends.
        DropRegions();
        if (TakeWriteSideForClose())
        {
            _pending = default;
            _pendingSent = 0;
            _output.Reader.Complete(_outputCompletion);
            // Closing the fd also removes it from the epoll set; the token's generation makes any event of it that
            // is still queued resolve to nothing.
            ReleaseFd();
        }

        // Again: a region queued while the side was being closed. One queued from now on sees SendClosed and releases
        // its file itself.
        DropRegions();
        CompleteInput(shutdownReason);
        // On the reactor thread: never wait for the reactors to stop here.
        _ = _group.Release();
    }

    /// <summary>
    /// Marks the write side closed. True: no flusher is inside, and the caller completes the output reader and closes
    /// the fd. False: a flusher owns the side (it may be in sendmsg on the fd right now); it does both when it leaves
    /// (<see cref="ReleaseFlusher"/>).
    /// </summary>
    private bool TakeWriteSideForClose()
    {
        var state = Volatile.Read(ref _sendState);
        while (true)
        {
            var flusherInside = (state & SendFlusher) != 0;
            var seen = Interlocked.CompareExchange(ref _sendState, flusherInside ? state | SendClosed : SendClosed, state);
            if (seen == state)
            {
                return !flusherInside;
            }
            state = seen;
        }
    }

    /// <summary>
    /// The last user of the fd closes it (the reactor in <c>Close</c>, or the flusher that was inside then), and only
    /// then does <see cref="DisposeAsync"/> complete: a disposed connection holds no fd.
    /// </summary>
    private void ReleaseFd()
    {
        PosixIO.Close(_fd);
        ThreadPool.UnsafeQueueUserWorkItem(static connection =>
        {
            connection.CancelClosedToken();
            connection._closedCompletion.TrySetResult();
        }, this, preferLocal: false);
    }

    private void FireConnectionClosed()
    {
        if (Volatile.Read(ref _closedTokenFired) == 0)
        {
            // ConnectionClosed callbacks are application code: never run them on the reactor.
            ThreadPool.UnsafeQueueUserWorkItem(static connection => connection.CancelClosedToken(), this, preferLocal: false);
        }
    }

    private void CancelClosedToken()
    {
        if (Interlocked.Exchange(ref _closedTokenFired, 1) != 0)
        {
            return;
        }
        try
        {
            _closedTokenSource.Cancel();
        }
        catch (Exception ex)
        {
            EpollTransportLog.ConnectionError(_logger, this, ex);
        }
    }
}
