using System.IO.Pipelines;
using Microsoft.Win32.SafeHandles;

namespace EpollTransport.Connections;

/// <summary>
/// The application's writer of a connection's output: the output pipe's writer, and, while a file region is armed
/// (<see cref="IEpollFileRegionFeature"/>), the recorder of file bytes. Armed, <see cref="GetMemory"/> hands out
/// scratch memory that is never sent, and <see cref="Advance"/> queues "k bytes of the file after the pipe bytes
/// committed so far" for the sender instead of advancing the pipe. Called by one writer at a time, as any
/// <see cref="PipeWriter"/>.
/// </summary>
/// <remarks>
/// A flush after regions wakes the sender by cancelling its pending read of the pipe: a pipe does not wake its reader
/// for a flush that adds no byte, and a region at the end of a response is followed by none. Without the wake a
/// sender that went back to waiting before the region was queued would never send it.
/// <para>
/// Region bytes count toward <see cref="EpollTransportOptions.MaxWriteBufferSize"/> as the pipe's bytes do: a flush
/// that leaves more region bytes unsent than the limit waits until the sender has brought them down to half of it
/// (the pipe's own pause and resume thresholds), or the connection closed. A region the size of the limit or less
/// never waits, so a small file's response ends as a copied one would. The waiting flush resumes where a paused pipe
/// flush would: on the thread pool, or with inline scheduling on the reactor's work queue, in the turn that sent the
/// bytes (never inside the send itself).
/// </para>
/// </remarks>
internal sealed class ConnectionOutput(PipeWriter pipe, PipeReader sender, Action<FileRegion> enqueue, long pauseThreshold, long resumeThreshold,
    PipeScheduler resumeOn) : PipeWriter
{
    private static readonly FlushResult s_drained = new(isCanceled: false, isCompleted: false);
    private static readonly FlushResult s_closed = new(isCanceled: false, isCompleted: true);
    private static readonly FlushResult s_canceled = new(isCanceled: true, isCompleted: false);

    /// <summary>
    /// Scratch memory for armed writes. Its contents are never read, so every connection shares it (writers racing on
    /// it write bytes that nobody sends).
    /// </summary>
    private static readonly byte[] s_scratch = GC.AllocateUninitializedArray<byte>(1024 * 1024, pinned: true);

    private long _committed;
    private SafeFileHandle? _file;
    private long _offset;
    private long _remaining;
    private bool _regionsSinceFlush;

    /// <summary>The armed range is known to be in the page cache and read: its regions need no check before sending.</summary>
    private bool _pagesReady;

    /// <summary>Region bytes queued so far. Written by the writer only.</summary>
    private long _regionQueued;

    /// <summary>Region bytes sent (or dropped by a close) so far. Written by the sender.</summary>
    private long _regionSent;

    /// <summary>The flush waiting for the sender to bring the unsent region bytes down; null when none waits.</summary>
    private TaskCompletionSource<FlushResult>? _drain;

    private volatile bool _closed;

    /// <summary>Region bytes queued and not yet sent.</summary>
    private long RegionUnsent => Volatile.Read(ref _regionQueued) - Volatile.Read(ref _regionSent);

    /// <summary>Arms a region; the caller has checked that the connection can send one.</summary>
    public void Arm(SafeFileHandle file, long offset, long length, bool pagesReady)
    {
        if (_file is not null)
        {
            throw new InvalidOperationException("A file region is already armed on this connection.");
        }
        _file = file;
        _offset = offset;
        _remaining = length;
        _pagesReady = pagesReady;
    }

    /// <summary>Ends the region: how many of its bytes were not advanced.</summary>
    public long Disarm()
    {
        var missing = _remaining;
        _file = null;
        _remaining = 0;
        return missing;
    }

    public override void Advance(int bytes)
    {
        if (_file is null)
        {
            pipe.Advance(bytes);
            _committed += bytes;
            return;
        }
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        if (bytes > _remaining)
        {
            throw new InvalidOperationException($"Advanced {bytes} bytes with {_remaining} left in the armed file region.");
        }
        if (bytes == 0)
        {
            return;
        }
        Volatile.Write(ref _regionQueued, _regionQueued + bytes);
        enqueue(new FileRegion(_file, _committed, _offset, bytes) { ResidentUntil = _pagesReady ? _offset + bytes : 0 });
        _regionsSinceFlush = true;
        _offset += bytes;
        _remaining -= bytes;
        if (_remaining == 0)
        {
            // All of it recorded: what follows is pipe bytes again (the next response, pipelined).
            _file = null;
        }
    }

    public override Memory<byte> GetMemory(int sizeHint = 0)
        => _file is null ? pipe.GetMemory(sizeHint) : Scratch(sizeHint);

    public override Span<byte> GetSpan(int sizeHint = 0)
        => _file is null ? pipe.GetSpan(sizeHint) : Scratch(sizeHint).Span;

    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
    {
        var flush = pipe.FlushAsync(cancellationToken);
        if (_regionsSinceFlush)
        {
            _regionsSinceFlush = false;
            // See the remarks. If the flush woke the sender already, its next read comes back at once, empty.
            sender.CancelPendingRead();
        }
        if (pauseThreshold <= 0 || RegionUnsent <= pauseThreshold)
        {
            return flush;
        }
        return FlushAndDrainAsync(flush, cancellationToken);
    }

    /// <summary>The pipe's flush, then the wait for the sender to bring the unsent region bytes down (see the remarks).</summary>
    private async ValueTask<FlushResult> FlushAndDrainAsync(ValueTask<FlushResult> flush, CancellationToken cancellationToken)
    {
        var result = await flush.ConfigureAwait(false);
        if (result.IsCanceled || result.IsCompleted)
        {
            return result;
        }
        // Completed only through resumeOn (see Resume), which is where the continuation runs.
        var drain = new TaskCompletionSource<FlushResult>();
        Interlocked.Exchange(ref _drain, drain);
        // The sender may have drained (or the connection closed) before it could see the waiter.
        if (_closed || RegionUnsent <= resumeThreshold)
        {
            if (Interlocked.CompareExchange(ref _drain, null, drain) == drain)
            {
                return _closed ? s_closed : result;
            }
        }
        using var registration = cancellationToken.UnsafeRegister(static (state, token) =>
        {
            var (output, drain) = ((ConnectionOutput, TaskCompletionSource<FlushResult>))state!;
            if (Interlocked.CompareExchange(ref output._drain, null, drain) == drain)
            {
                drain.TrySetCanceled(token);
            }
        }, (this, drain));
        return await drain.Task.ConfigureAwait(false);
    }

    /// <summary>The sender sent (or dropped) <paramref name="bytes"/> region bytes; wakes a flush waiting for them.</summary>
    public void RegionBytesSent(long bytes)
    {
        Interlocked.Add(ref _regionSent, bytes);
        if (Volatile.Read(ref _drain) is { } drain && (_closed || RegionUnsent <= resumeThreshold)
            && Interlocked.CompareExchange(ref _drain, null, drain) == drain)
        {
            Resume(drain, _closed ? s_closed : s_drained);
        }
    }

    private void Resume(TaskCompletionSource<FlushResult> drain, FlushResult result)
        => resumeOn.Schedule(static state =>
        {
            var (drain, result) = ((TaskCompletionSource<FlushResult>, FlushResult))state!;
            drain.TrySetResult(result);
        }, (drain, result));

    /// <summary>The connection closed: a flush waiting for region bytes ends as completed. Any thread.</summary>
    public void Closed()
    {
        _closed = true;
        if (Interlocked.Exchange(ref _drain, null) is { } drain)
        {
            Resume(drain, s_closed);
        }
    }

    public override void CancelPendingFlush()
    {
        pipe.CancelPendingFlush();
        if (Interlocked.Exchange(ref _drain, null) is { } drain)
        {
            Resume(drain, s_canceled);
        }
    }

    public override void Complete(Exception? exception = null)
    {
        _file = null;
        pipe.Complete(exception);
    }

    public override ValueTask CompleteAsync(Exception? exception = null)
    {
        _file = null;
        return pipe.CompleteAsync(exception);
    }

    public override bool CanGetUnflushedBytes => pipe.CanGetUnflushedBytes;

    public override long UnflushedBytes => pipe.UnflushedBytes;

    private static Memory<byte> Scratch(int sizeHint)
        => sizeHint <= s_scratch.Length ? s_scratch : new byte[sizeHint];
}
