using System.Buffers;
using EpollTransport.Posix;

namespace StaticFiles.Amped.Disk;

/// <summary>
/// A <c>pread</c> that may wait for the disk, into a buffer of the job's own. Not into the response's memory: if the
/// client goes away while the helper waits, the response pipe returns its blocks to the pool, and a read landing
/// there later would write into another connection's data.
/// </summary>
internal sealed class ReadFileJob(IFileCalls calls, int fd, int count, long offset) : DiskJob<PosixResult>, IDisposable
{
    private byte[]? _buffer = ArrayPool<byte>.Shared.Rent(count);

    /// <summary>The bytes read, valid once the job completed and until <see cref="Dispose"/>.</summary>
    public ReadOnlySpan<byte> Data(int length) => _buffer.AsSpan(0, length);

    /// <summary>Returns the buffer; only after the job completed (a helper may still be writing into it before).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _buffer, null) is { } buffer)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    protected override PosixResult Execute() => calls.Read(fd, _buffer.AsSpan(0, count), offset);
}
