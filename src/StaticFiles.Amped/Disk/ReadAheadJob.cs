using EpollTransport.Posix;

namespace StaticFiles.Amped.Disk;

/// <summary>A <c>readahead</c> that may wait for the disk: the range is in the page cache when it completes, for a sendfile on the loop.</summary>
internal sealed class ReadAheadJob(IFileCalls calls, int fd, long offset, long length) : DiskJob<PosixResult>
{
    protected override PosixResult Execute() => calls.ReadAhead(fd, offset, length);
}
