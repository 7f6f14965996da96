using EpollTransport.Posix;
using StaticFiles.Amped.Disk;
using StaticFiles.Amped.Interop;

namespace StaticFiles.Amped.Tests.Caching;

/// <summary>The real file calls, counted: what a request costs in system calls (a cached open or stat counts as one).</summary>
internal sealed class CountingFileCalls : IFileCalls
{
    private readonly IFileCalls _real = LinuxFileCalls.Instance;
    private int _opens;
    private int _stats;
    private int _readsNoWait;
    private int _reads;
    private int _closes;

    public int Opens => Volatile.Read(ref _opens);

    public int Stats => Volatile.Read(ref _stats);

    public int ReadsNoWait => Volatile.Read(ref _readsNoWait);

    public int Reads => Volatile.Read(ref _reads);

    public int Closes => Volatile.Read(ref _closes);

    /// <summary>Every call of any kind so far.</summary>
    public int All => Opens + Stats + ReadsNoWait + Reads + Closes;

    public PosixResult OpenBeneath(int rootFd, string relativePath)
    {
        Interlocked.Increment(ref _opens);
        return _real.OpenBeneath(rootFd, relativePath);
    }

    public PosixResult StatFd(int fd, out Statx statx)
    {
        Interlocked.Increment(ref _stats);
        return _real.StatFd(fd, out statx);
    }

    public PosixResult OpenBeneathCached(int rootFd, string relativePath)
    {
        Interlocked.Increment(ref _opens);
        return _real.OpenBeneathCached(rootFd, relativePath);
    }

    public PosixResult StatFdCached(int fd, out Statx statx)
    {
        Interlocked.Increment(ref _stats);
        return _real.StatFdCached(fd, out statx);
    }

    public PosixResult ReadNoWait(int fd, Span<byte> buffer, long offset)
    {
        Interlocked.Increment(ref _readsNoWait);
        return _real.ReadNoWait(fd, buffer, offset);
    }

    public PosixResult Read(int fd, Span<byte> buffer, long offset)
    {
        Interlocked.Increment(ref _reads);
        return _real.Read(fd, buffer, offset);
    }

    public void Close(int fd)
    {
        Interlocked.Increment(ref _closes);
        _real.Close(fd);
    }
}
