using EpollTransport.Posix;
using StaticFiles.Amped.Interop;

namespace StaticFiles.Amped.Disk;

/// <summary>
/// The file calls a request makes, behind one seam so that a test can stand in a slow disk (a read that blocks
/// until released) and watch the loop go on serving meanwhile. <see cref="LinuxFileCalls"/> is the real one.
/// </summary>
internal interface IFileCalls
{
    PosixResult OpenBeneath(int rootFd, string relativePath);

    PosixResult StatFd(int fd, out Statx statx);

    /// <summary>An open from the dentry cache only; EAGAIN otherwise. Made on the loop.</summary>
    PosixResult OpenBeneathCached(int rootFd, string relativePath);

    /// <summary>A statx from what the kernel holds, without asking a network file system's server. Made on the loop.</summary>
    PosixResult StatFdCached(int fd, out Statx statx);

    /// <summary>Page-cache data only; EAGAIN otherwise. Made on the loop.</summary>
    PosixResult ReadNoWait(int fd, Span<byte> buffer, long offset);

    PosixResult Read(int fd, Span<byte> buffer, long offset);

    /// <summary>Whether a range is in the page cache and read (<see cref="PosixIO.PagesReady"/>); never waits. Made on the loop.</summary>
    PosixResult IsResident(int fd, long offset, long length, out bool resident) => PosixIO.PagesReady(fd, offset, length, out resident);

    /// <summary>Reads a range into the page cache and returns once it is there (readahead); may wait for the disk.</summary>
    PosixResult ReadAhead(int fd, long offset, long length) => PosixIO.ReadAhead(fd, offset, length);

    void Close(int fd);
}

/// <summary>The system calls themselves (<see cref="FileInterop"/>).</summary>
internal sealed class LinuxFileCalls : IFileCalls
{
    public static readonly LinuxFileCalls Instance = new();

    public PosixResult OpenBeneath(int rootFd, string relativePath) => FileInterop.OpenBeneath(rootFd, relativePath);

    public PosixResult StatFd(int fd, out Statx statx) => FileInterop.StatFd(fd, out statx);

    public PosixResult OpenBeneathCached(int rootFd, string relativePath) => FileInterop.OpenBeneathCached(rootFd, relativePath);

    public PosixResult StatFdCached(int fd, out Statx statx) => FileInterop.StatFdCached(fd, out statx);

    public PosixResult ReadNoWait(int fd, Span<byte> buffer, long offset) => PosixIO.ReadNoWait(fd, buffer, offset);

    public PosixResult Read(int fd, Span<byte> buffer, long offset) => FileInterop.Read(fd, buffer, offset);

    public void Close(int fd) => PosixIO.Close(fd);
}
