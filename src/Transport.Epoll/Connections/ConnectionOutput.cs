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
/// </remarks>
internal sealed class ConnectionOutput(PipeWriter pipe, PipeReader sender, Action<FileRegion> enqueue) : PipeWriter
{
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

    /// <summary>Whether a region is armed.</summary>
    public bool Armed => _file is not null;

    /// <summary>Arms a region; the caller has checked that the connection can send one.</summary>
    public void Arm(SafeFileHandle file, long offset, long length)
    {
        if (_file is not null)
        {
            throw new InvalidOperationException("A file region is already armed on this connection.");
        }
        _file = file;
        _offset = offset;
        _remaining = length;
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
        enqueue(new FileRegion(_file, _committed, _offset, bytes));
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
        return flush;
    }

    public override void CancelPendingFlush() => pipe.CancelPendingFlush();

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
