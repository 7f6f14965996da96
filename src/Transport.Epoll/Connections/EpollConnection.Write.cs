using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using EpollTransport.Interop;
using EpollTransport.Posix;
using EpollTransport.Reactor;

namespace EpollTransport.Connections;

internal sealed partial class EpollConnection
{
    private ValueTaskAwaiter<ReadResult> _readAwaiter;
    private ReadResult _pending;

    /// <summary>Waits for the application's next flush; its continuation runs on the reactor. Reactor thread.</summary>
    private void StartOutputRead()
    {
        ValueTask<ReadResult> read;
        try
        {
            read = _output.Reader.ReadAsync();
        }
        catch (Exception ex)
        {
            FailOutput(ex);
            return;
        }

        _writeState = WriteState.Reading;
        _readAwaiter = read.GetAwaiter();
        if (read.IsCompleted)
        {
            OnOutputReadable();
        }
        else
        {
            _readAwaiter.UnsafeOnCompleted(_onOutputReadable);
        }
    }

    private void OnOutputReadable()
    {
        if (_writeState != WriteState.Reading)
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

    private void Hold(in ReadResult result)
    {
        _pending = result;
        _writeState = WriteState.Holding;
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
        if (_writeState != WriteState.Holding || !_writable)
        {
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
            if (result.Value == buffer.Length)
            {
                AfterSend(buffer.End, completed: _pending.IsCompleted);
                return;
            }
            // A short write (or more segments than one sendmsg takes): keep the rest and try again next turn;
            // only EAGAIN says the socket buffer is full.
            var completed = _pending.IsCompleted;
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
            _writable = false;
            _reactor.Counters.WriteWouldBlock++;
            _reactor.Observer?.OnWriteWouldBlock(this);
            return;
        }
        OnSendError(result.Errno);
    }

    private void OnSendError(int errno) => Close(ConnectionFailure(errno), reset: false);

    private void AfterSend(SequencePosition end, bool completed)
    {
        _output.Reader.AdvanceTo(end);
        _pending = default;
        _writeState = WriteState.Idle;
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
