using System.Collections.Concurrent;
using EpollTransport.Posix;
using StaticFiles.Amped.Disk;
using StaticFiles.Amped.Interop;

namespace StaticFiles.Amped.Tests.Disk;

/// <summary>The real calls, except that the dentry cache never has the answer.</summary>
internal sealed class ColdDentries : IFileCalls
{
    public ConcurrentBag<string> CachedOpens { get; } = [];

    /// <summary>Path → the name of the thread that opened it.</summary>
    public ConcurrentDictionary<string, string?> FullOpens { get; } = new();

    public PosixResult OpenBeneath(int rootFd, string relativePath)
    {
        FullOpens[relativePath] = Thread.CurrentThread.Name;
        return LinuxFileCalls.Instance.OpenBeneath(rootFd, relativePath);
    }

    public PosixResult OpenBeneathCached(int rootFd, string relativePath)
    {
        CachedOpens.Add(relativePath);
        return PosixResult.FromErrno(Errnos.EAGAIN);
    }

    public PosixResult StatFd(int fd, out Statx statx) => LinuxFileCalls.Instance.StatFd(fd, out statx);

    public PosixResult StatFdCached(int fd, out Statx statx) => LinuxFileCalls.Instance.StatFdCached(fd, out statx);

    public PosixResult ReadNoWait(int fd, Span<byte> buffer, long offset) => LinuxFileCalls.Instance.ReadNoWait(fd, buffer, offset);

    public PosixResult Read(int fd, Span<byte> buffer, long offset) => LinuxFileCalls.Instance.Read(fd, buffer, offset);

    public void Close(int fd) => LinuxFileCalls.Instance.Close(fd);
}
