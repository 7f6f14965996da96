using System.Collections.Concurrent;
using EpollTransport.Posix;
using StaticFiles.Amped.Disk;
using StaticFiles.Amped.Interop;

namespace StaticFiles.Amped.Tests.Disk;

/// <summary>
/// The real file calls, with the failures a test scripts: errnos that an open returns next, a dentry cache that
/// never answers (every open goes to a helper), reads of one file that miss the page cache and wait until released,
/// a <c>statx</c> that reports another mtime. It counts the fds it handed out against the ones closed, so a test can
/// show that no path leaks one.
/// </summary>
internal sealed class ScriptedDisk : IFileCalls, IDisposable
{
    private readonly ConcurrentDictionary<string, ConcurrentQueue<int>> _openFailures = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<int, byte> _open = new();
    private readonly ConcurrentDictionary<int, string> _names = new();
    private readonly ManualResetEventSlim _readsReleased = new();
    private readonly TaskCompletionSource _readWaiting = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ManualResetEventSlim _opensReleased = new();
    private readonly TaskCompletionSource _openWaiting = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource _allClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _opened;

    /// <summary>Whether every cached open answers EAGAIN, so that the open goes to a helper. Default: false.</summary>
    public bool ColdDentries { get; init; }

    /// <summary>Reads of this file (a relative path) miss the page cache and block until <see cref="ReleaseReads"/>.</summary>
    public string? SlowFile { get; init; }

    /// <summary>Helper opens of this path block until <see cref="ReleaseOpens"/>.</summary>
    public string? SlowOpen { get; init; }

    /// <summary>Completes when a helper is blocked in the open of <see cref="SlowOpen"/>.</summary>
    public Task OpenWaiting => _openWaiting.Task;

    /// <summary>The <c>stx_mtime.tv_sec</c> that every <c>statx</c> of a regular file reports, when set.</summary>
    public long? ModifiedSeconds { get; init; }

    /// <summary>How long a blocked read waits at most for <see cref="ReleaseReads"/>.</summary>
    public TimeSpan ReadLimit { get; init; } = WaitLimit;

    /// <summary>Completes when a helper is blocked in a read of <see cref="SlowFile"/>.</summary>
    public Task ReadWaiting => _readWaiting.Task;

    /// <summary>fds handed out by an open so far.</summary>
    public int Opened => Volatile.Read(ref _opened);

    /// <summary>fds handed out and not closed yet.</summary>
    public int StillOpen => _open.Count;

    /// <summary>Completes once every fd handed out so far is closed (at once if none is open).</summary>
    public Task AllClosed
    {
        get
        {
            var allClosed = Volatile.Read(ref _allClosed);
            return _open.IsEmpty ? Task.CompletedTask : allClosed.Task;
        }
    }

    /// <summary>The next opens of <paramref name="relativePath"/> (on the loop or on a helper) fail with these errnos, in order.</summary>
    public void FailOpens(string relativePath, params int[] errnos)
    {
        var queue = _openFailures.GetOrAdd(relativePath, _ => new ConcurrentQueue<int>());
        foreach (var errno in errnos)
        {
            queue.Enqueue(errno);
        }
    }

    public void ReleaseReads() => _readsReleased.Set();

    public void ReleaseOpens() => _opensReleased.Set();

    public void Dispose()
    {
        _readsReleased.Dispose();
        _opensReleased.Dispose();
    }

    public PosixResult OpenBeneath(int rootFd, string relativePath)
    {
        if (relativePath == SlowOpen)
        {
            _openWaiting.TrySetResult();
            _opensReleased.Wait(ReadLimit);
        }
        return ScriptedFailure(relativePath) ?? Track(relativePath, LinuxFileCalls.Instance.OpenBeneath(rootFd, relativePath));
    }

    public PosixResult OpenBeneathCached(int rootFd, string relativePath)
    {
        if (ColdDentries)
        {
            return PosixResult.FromErrno(Errnos.EAGAIN);
        }
        return ScriptedFailure(relativePath) ?? Track(relativePath, LinuxFileCalls.Instance.OpenBeneathCached(rootFd, relativePath));
    }

    public PosixResult StatFd(int fd, out Statx statx) => Stated(LinuxFileCalls.Instance.StatFd(fd, out statx), ref statx);

    public PosixResult StatFdCached(int fd, out Statx statx) => Stated(LinuxFileCalls.Instance.StatFdCached(fd, out statx), ref statx);

    /// <remarks>Once the reads are released the file is in the page cache, as after a real read from the disk.</remarks>
    public PosixResult ReadNoWait(int fd, Span<byte> buffer, long offset)
        => IsSlow(fd) && !_readsReleased.IsSet ? PosixResult.FromErrno(Errnos.EAGAIN) : LinuxFileCalls.Instance.ReadNoWait(fd, buffer, offset);

    public PosixResult Read(int fd, Span<byte> buffer, long offset)
    {
        if (IsSlow(fd))
        {
            _readWaiting.TrySetResult();
            // The helper thread blocks here, as in a read from a slow disk.
            _readsReleased.Wait(ReadLimit);
        }
        return LinuxFileCalls.Instance.Read(fd, buffer, offset);
    }

    public void Close(int fd)
    {
        if (_open.TryRemove(fd, out _))
        {
            _names.TryRemove(fd, out _);
            LinuxFileCalls.Instance.Close(fd);
            if (_open.IsEmpty)
            {
                Interlocked.Exchange(ref _allClosed, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
            }
            return;
        }
        LinuxFileCalls.Instance.Close(fd);
    }

    private PosixResult? ScriptedFailure(string relativePath)
        => _openFailures.TryGetValue(relativePath, out var queue) && queue.TryDequeue(out var errno) ? PosixResult.FromErrno(errno) : null;

    private PosixResult Track(string relativePath, PosixResult opened)
    {
        if (opened.IsSuccess)
        {
            _open[opened.IntValue] = 0;
            _names[opened.IntValue] = relativePath;
            Interlocked.Increment(ref _opened);
        }
        return opened;
    }

    private bool IsSlow(int fd) => SlowFile is { } slow && _names.TryGetValue(fd, out var name) && name == slow;

    private PosixResult Stated(PosixResult result, ref Statx statx)
    {
        if (result.IsSuccess && ModifiedSeconds is { } seconds && (statx.stx_mode & FileInterop.S_IFMT) == FileInterop.S_IFREG)
        {
            statx.stx_mtime.tv_sec = seconds;
        }
        return result;
    }
}
