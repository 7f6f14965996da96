using System.Collections.Concurrent;
using EpollTransport.Interop;
using EpollTransport.Posix;
using Microsoft.AspNetCore.Connections;
using Microsoft.Win32.SafeHandles;

namespace EpollTransport.Connections;

/// <summary>
/// File regions: zero-copy file bytes in the output stream (<see cref="IEpollFileRegionFeature"/>). The application's
/// writer (<see cref="ConnectionOutput"/>) queues each region with the count of output pipe bytes before it; the
/// reactor's send interleaves <c>sendmsg</c> of pipe bytes and <c>sendfile</c> of regions in that order.
/// </summary>
/// <remarks>
/// <para>
/// A region is sent only by the reactor: a connection that writes through refuses to arm one (so do HTTP/2
/// connections, whose frames from other streams would be taken for file bytes). The queue is filled by the writer's
/// <c>Advance</c>, before the pipe bytes that follow the region are flushed; the reactor sees those bytes only after
/// that flush, so it always sees the region first.
/// </para>
/// <para>
/// The AMPED rule: a reactor never waits for the disk, and <c>sendfile</c> of a page that is not in the page cache
/// reads it synchronously. So before each chunk the reactor asks <c>mincore(2)</c> whether the chunk's pages are
/// in the cache and read (<see cref="PosixIO.PagesReady"/>); when they are not, a thread-pool thread reads the chunk
/// in (<see cref="PosixIO.ReadAhead"/>, which returns once it is read), and the reactor sends it then. One chunk per connection per turn, so a large
/// file shares the reactor round-robin with every other connection.
/// </para>
/// </remarks>
internal sealed partial class EpollConnection
{
    /// <summary>The most bytes one <c>sendfile</c> (and one residency check) covers; a connection sends one chunk a turn.</summary>
    internal const long RegionChunk = 1024 * 1024;

    private ConcurrentQueue<FileRegion>? _regions;

    /// <summary>Output pipe bytes sent so far, by whichever thread owns the write side.</summary>
    private long _pipeSent;

    /// <summary>A read-ahead of the head region's next chunk is running off the reactor. Reactor thread.</summary>
    private bool _readAheadPending;

    /// <summary>The first bytes were the cleartext HTTP/2 preface. Reactor thread writes, any thread reads.</summary>
    private volatile bool _http2;

    /// <summary>The response body that sends SendFileAsync's files as regions, kept for the connection's HTTP/1.x requests.</summary>
    internal Http.ZeroCopyResponseBody? ResponseBody { get; set; }

    bool IEpollFileRegionFeature.TryArm(SafeFileHandle file, long offset, long length, bool pagesReady)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
        if (file.IsInvalid || file.IsClosed
            || _writeThrough || _http2
            || (Volatile.Read(ref _sendState) & SendClosed) != 0
            || !ReferenceEquals(Transport.Output, _outputWriter))
        {
            return false;
        }
        _outputWriter.Arm(file, offset, length, pagesReady);
        return true;
    }

    long IEpollFileRegionFeature.Disarm() => _outputWriter.Disarm();

    /// <summary>Queues a region for the sender; the application's writing thread.</summary>
    private void EnqueueRegion(FileRegion region)
    {
        var regions = _regions;
        if (regions is null)
        {
            Interlocked.CompareExchange(ref _regions, new ConcurrentQueue<FileRegion>(), null);
            regions = _regions;
        }
        regions.Enqueue(region);
        if ((Volatile.Read(ref _sendState) & SendClosed) != 0)
        {
            // Closed meanwhile: nobody will send it.
            DropRegions();
        }
    }

    private bool HasRegions => _regions is { IsEmpty: false };

    /// <summary>
    /// Sends what is held, pipe bytes and regions in stream order, until the socket is full, a chunk waits for the
    /// disk, one region chunk went out (the next turn continues), or everything is sent. Reactor thread.
    /// </summary>
    private void SendWithRegions()
    {
        while (true)
        {
            var pending = _pending.Buffer.Slice(_pendingSent);
            _regions!.TryPeek(out var region);
            if (region is not null && region.PipePosition == _pipeSent)
            {
                if (!SendRegionChunk(region))
                {
                    return;
                }
                continue;
            }

            var limit = region is null ? pending.Length : Math.Min(pending.Length, region.PipePosition - _pipeSent);
            if (limit == 0)
            {
                // Everything held is sent; a region further on waits for the pipe bytes before it to be flushed.
                _pendingSent = 0;
                AfterSend(_pending.Buffer.End, completed: _pending.IsCompleted && !HasRegions);
                return;
            }

            var buffer = pending.Slice(0, limit);
            var result = IOVectorBatch.Send(_fd, buffer, out var count);
            _reactor.Counters.Sends++;
            _reactor.Counters.SegmentsSent += count;
            if (!result.IsSuccess)
            {
                if (result.WouldBlock)
                {
                    OnSocketFull();
                    return;
                }
                OnSendError(result.Errno);
                return;
            }
            _pipeSent += result.Value;
            _pendingSent += result.Value;
            if (result.Value < buffer.Length && count < IOVectorBatch.MaxVectors)
            {
                // Short of what was gathered: the socket buffer is full; the next turn's try finds EAGAIN or room.
                _reactor.QueueSend(this);
                return;
            }
        }
    }

    /// <summary>
    /// One step of the head region: a residency check, then one <c>sendfile</c> of up to a chunk. True: go on with the
    /// stream now (the region is done, or the socket took less than offered and will say EAGAIN or take more).
    /// Reactor thread.
    /// </summary>
    private bool SendRegionChunk(FileRegion region)
    {
        if (_readAheadPending)
        {
            return false;
        }
        var want = Math.Min(region.Remaining, RegionChunk);
        if (region.ResidentUntil < region.Offset + want)
        {
            if (!IsResident(region, want))
            {
                StartReadAhead(region, want);
                return false;
            }
            region.ResidentUntil = region.Offset + want;
        }

        var sent = FileRegionInterop.SendFile(_fd, region.File, region.Offset, want);
        _reactor.Counters.FileSends++;
        if (!sent.IsSuccess)
        {
            if (sent.WouldBlock)
            {
                OnSocketFull();
                return false;
            }
            OnSendError(sent.Errno);
            return false;
        }
        if (sent.Value == 0)
        {
            // The file ends before the region does: the response's Content-Length can no longer be kept.
            Close(new ConnectionAbortedException("A file region's file ended before the region was sent (the file shrank)."), reset: true);
            return false;
        }
        region.Offset += sent.Value;
        region.Remaining -= sent.Value;
        _reactor.Counters.FileBytesSent += sent.Value;
        _outputWriter.RegionBytesSent(sent.Value);
        if (region.Remaining == 0)
        {
            _regions!.TryDequeue(out _);
            region.Release();
            return true;
        }
        if (sent.Value < want)
        {
            return true;
        }
        // A whole chunk went out: the next one waits for the next turn, behind the other connections' sends.
        _reactor.QueueSend(this);
        return false;
    }

    private static bool IsResident(FileRegion region, long length)
        => FileRegionInterop.IsResident(region.File, region.Offset, length, out var resident).IsSuccess && resident;

    /// <summary>Reads a chunk into the page cache on a thread-pool thread; the reactor sends it when that is done.</summary>
    private void StartReadAhead(FileRegion region, long length)
    {
        _readAheadPending = true;
        _reactor.Counters.FileReadAheads++;
        var offset = region.Offset;
        ThreadPool.UnsafeQueueUserWorkItem(static state =>
        {
            var (connection, region, offset, length) = state;
            try
            {
                // Errors are the sendfile's to report: it reads the same range again.
                FileRegionInterop.ReadAhead(region.File, offset, length);
            }
            catch (ObjectDisposedException)
            {
                // The connection closed and the file with it: the reactor finds the connection closed.
            }
            connection._reactor.Schedule(static s =>
            {
                var (connection, region, end) = ((EpollConnection, FileRegion, long))s!;
                connection._readAheadPending = false;
                if (region.Remaining > 0 && region.ResidentUntil < end)
                {
                    region.ResidentUntil = end;
                }
                if (connection._holding && connection._writable)
                {
                    connection._reactor.QueueSend(connection);
                }
            }, (connection, region, offset + length));
        }, (this, region, offset, length), preferLocal: false);
    }

    /// <summary>Releases every queued region's file: the connection closed. Any thread, any number of times.</summary>
    private void DropRegions()
    {
        _outputWriter.Closed();
        if (_regions is { } regions)
        {
            while (regions.TryDequeue(out var region))
            {
                region.Release();
            }
        }
    }
}
