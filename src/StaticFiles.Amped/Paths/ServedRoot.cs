using Microsoft.Extensions.Logging;
using StaticFiles.Amped.Interop;

namespace StaticFiles.Amped.Paths;

/// <summary>
/// The configured root path and the directory it names now. The root is a path, not an inode: a deploy that swaps a
/// symlink (<c>ln -sfn releases/2 current.tmp &amp;&amp; mv -T current.tmp current</c>) or renames another folder into
/// place makes the path name another directory, and the middleware follows it: it opens the new directory, swaps it
/// in atomically and raises <see cref="Replaced"/>, on which the caches empty.
/// </summary>
/// <remarks>
/// Two ways to notice, neither on the request path: a <c>statx</c> of the path every <see cref="CheckPeriod"/> on a
/// timer thread (it may wait for the disk, so never on the loop), compared with the open root's device and inode;
/// and an inotify watch on the parent folder for the root's name, which checks at once when that name is replaced.
/// The watch alone would not do: a swap higher up (<c>/srv/current/public</c> with <c>current</c> swapped) changes no
/// entry in the parent the watch sees, so the timer bounds how long any swap goes unnoticed.
/// </remarks>
internal sealed partial class ServedRoot : IDisposable
{
    /// <summary>How often the root path is compared with the open root.</summary>
    internal static readonly TimeSpan CheckPeriod = TimeSpan.FromSeconds(1);

    private readonly string _path;
    private readonly ILogger _logger;
    // Orders swaps with each other and with Dispose, so that no check installs a root after Dispose let go of its
    // own. Never held across a system call, and never taken on a loop.
    private readonly Lock _gate = new();
    private readonly FileSystemWatcher? _parentWatch;
    private readonly Timer _timer;
    private RootDirectory _current;
    private bool _disposed;
    // Whether the path was last found naming nothing that opens: logged once per such stretch (at worst twice, when
    // the timer's and the parent watch's checks race).
    private bool _unavailable;
    private TaskCompletionSource _nextReplacement = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <exception cref="DirectoryNotFoundException"><paramref name="path"/> names no directory that can be opened.</exception>
    public ServedRoot(string path, ILogger logger)
    {
        _path = Path.TrimEndingDirectorySeparator(path);
        _logger = logger;
        var opened = RootDirectory.Open(_path, out var root);
        if (!opened.IsSuccess)
        {
            throw new DirectoryNotFoundException($"The static files root '{_path}' cannot be opened: {opened}.");
        }
        _current = root!;
        _parentWatch = WatchParent();
        // One-shot, re-armed after each check: a statx stuck on an unresponsive file system holds one timer thread,
        // not one more every period.
        _timer = new Timer(static state => ((ServedRoot)state!).OnTick(), this, CheckPeriod, Timeout.InfiniteTimeSpan);
    }

    /// <summary>
    /// Raised after the root was replaced, on the thread that noticed, before <see cref="NextReplacement"/> completes.
    /// Lookups that began before it may have opened beneath the old root: what they found must not be cached.
    /// </summary>
    public event Action? Replaced;

    /// <summary>Completes once the root path was next found naming another directory, that one was opened and <see cref="Replaced"/> ran.</summary>
    public Task NextReplacement => Volatile.Read(ref _nextReplacement).Task;

    /// <summary>
    /// The root as it is now, held for the caller, who must <see cref="RootDirectory.Release"/> it once the calls
    /// made beneath its fd (on a helper too) have returned.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The middleware was disposed.</exception>
    public RootDirectory Acquire()
    {
        while (true)
        {
            var root = Volatile.Read(ref _current);
            if (root.TryAcquire())
            {
                return root;
            }
            // Its last reference went between the read and the acquire: it was swapped out (the next read finds
            // its successor, which is in place before the old one is let go) or the middleware is gone.
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed), this);
        }
    }

    /// <summary>Stops watching and lets go of the root; requests still opening beneath it close it when they are done.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            Volatile.Write(ref _disposed, true);
        }
        _timer.Dispose();
        _parentWatch?.Dispose();
        _current.Release();
    }

    private void OnTick()
    {
        Check();
        lock (_gate)
        {
            if (!_disposed)
            {
                _timer.Change(CheckPeriod, Timeout.InfiniteTimeSpan);
            }
        }
    }

    /// <summary>Compares what the path names with the open root, and swaps in the new directory if they differ.</summary>
    private void Check()
    {
        if (Volatile.Read(ref _disposed))
        {
            return;
        }
        // The calls run outside the lock: on an unresponsive file system they may wait long, and Dispose must not.
        var stat = FileInterop.StatPath(_path, out var statx);
        if (stat.IsSuccess && Volatile.Read(ref _current).Is(statx))
        {
            Volatile.Write(ref _unavailable, false);
            return;
        }
        // The path names another directory, or for now nothing (a deploy between its unlink and its rename, or a
        // file): the old tree goes on being served until the path names a directory that opens.
        RootDirectory? fresh = null;
        var opened = stat.IsSuccess ? RootDirectory.Open(_path, out fresh) : stat;
        if (fresh is null)
        {
            if (!Volatile.Read(ref _unavailable))
            {
                Volatile.Write(ref _unavailable, true);
                LogRootUnavailable(_logger, _path, opened.ToString());
            }
            return;
        }
        Volatile.Write(ref _unavailable, false);
        RootDirectory stale;
        lock (_gate)
        {
            // Disposed meanwhile; or swapped away and back, or another check swapped it in first.
            if (_disposed || fresh.IsSameAs(_current))
            {
                fresh.Release();
                return;
            }
            stale = _current;
            Volatile.Write(ref _current, fresh);
        }
        LogRootReplaced(_logger, _path);
        // After the swap: a lookup that began before the caches empty here may have used either root, and what it
        // found is not cached (the generation moves here); one that begins after uses the new root.
        Replaced?.Invoke();
        // Requests that acquired the old root before the swap still hold it; the last of them closes it.
        stale.Release();
        Interlocked.Exchange(ref _nextReplacement, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }

    /// <summary>
    /// A check off the watcher's event thread, which the other watchers' events wait behind: the check may wait for
    /// the disk, and re-watches the new tree.
    /// </summary>
    private void CheckSoon() => ThreadPool.UnsafeQueueUserWorkItem(static root => root.Check(), this, preferLocal: false);

    /// <summary>An inotify watch on the parent folder for the root's name; null where there is none to watch (the timer still checks).</summary>
    private FileSystemWatcher? WatchParent()
    {
        var parent = Path.GetDirectoryName(_path);
        if (parent is null)
        {
            return null;
        }
        FileSystemWatcher? watch = null;
        try
        {
            watch = new FileSystemWatcher(parent, Path.GetFileName(_path))
            {
                NotifyFilter = NotifyFilters.FileName | NotifyFilters.DirectoryName,
            };
            // mv -T over the name reports a rename to it; rm then ln, a creation.
            watch.Created += (_, _) => CheckSoon();
            watch.Renamed += (_, _) => CheckSoon();
            watch.EnableRaisingEvents = true;
            return watch;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            // Out of inotify watches, or a parent that cannot be read: the timer alone notices, a period later.
            watch?.Dispose();
            return null;
        }
    }

    [LoggerMessage(10, LogLevel.Information, "The static files root {Path} now names another directory; serving that one, with the caches emptied.", EventName = "RootReplaced")]
    private static partial void LogRootReplaced(ILogger logger, string path);

    [LoggerMessage(11, LogLevel.Warning, "The static files root {Path} cannot be opened now ({Error}); the directory it named before goes on being served until it can.", EventName = "RootUnavailable")]
    private static partial void LogRootUnavailable(ILogger logger, string path, string error);
}
