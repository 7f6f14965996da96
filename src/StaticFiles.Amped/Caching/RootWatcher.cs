using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace StaticFiles.Amped.Caching;

/// <summary>
/// Watches everything under the root (inotify through <see cref="FileSystemWatcher"/>) and counts the changes. The
/// path caches empty themselves on each one: a change, a deletion or a new file is served as it is now as soon as
/// the kernel reports it, a few milliseconds after the write. inotify watches inodes, not paths: when the root path
/// comes to name another directory (<see cref="Paths.ServedRoot"/>), <see cref="Relisten"/> watches that one instead.
/// </summary>
/// <remarks>
/// <para>
/// One counter for every change under the root, not one per file: a rename, a new default document or a new
/// precompressed sibling changes what other paths resolve to, and working that out per event is where caches go
/// stale. Sites change rarely; an emptied cache refills from the next requests.
/// </para>
/// <para>
/// A watch can be lost: the kernel refuses one for a new folder once <c>fs.inotify.max_user_watches</c> is reached
/// (ENOSPC), or drops events when its queue overflows; the watcher then raises Error, and changes go unreported from
/// then on. That is logged, and until a watch is made again (tried on a timer, with a growing delay) the caches take
/// no new entries (<see cref="IsListening"/>): every request is looked up on disk, which sees a rewritten, a replaced
/// and a new file alike. Revalidating each hit instead would cost as many calls as the lookup: a new precompressed
/// sibling or default document changes the answer as much as the file itself.
/// </para>
/// </remarks>
internal sealed partial class RootWatcher : IDisposable
{
    private static readonly TimeSpan FirstRetryDelay = TimeSpan.FromSeconds(1);
    // Each attempt walks the tree and adds a watch per folder: a limit that stays reached is not hammered.
    private static readonly TimeSpan LongestRetryDelay = TimeSpan.FromMinutes(1);

    private readonly string _root;
    private readonly ILogger _logger;
    private readonly Func<string, FileSystemWatcher> _createWatcher;
    // Serializes the watch's state changes (loss, new watch, Dispose); cold, and never taken on a loop.
    private readonly Lock _gate = new();
    private readonly Timer _retry;
    private FileSystemWatcher _watcher;
    private bool _listening = true;
    private int _losses;
    private TimeSpan _retryDelay = FirstRetryDelay;
    private bool _disposed;
    private long _generation;
    private TaskCompletionSource _nextChange = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource _nextRestore = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <param name="root">The root path.</param>
    /// <param name="logger">Where a lost and a restored watch are reported.</param>
    /// <param name="createWatcher">Makes an unstarted watcher for a path; a test passes one whose watch it can lose.</param>
    public RootWatcher(string root, ILogger? logger = null, Func<string, FileSystemWatcher>? createWatcher = null)
    {
        _root = root;
        _logger = logger ?? NullLogger.Instance;
        _createWatcher = createWatcher ?? (static path => new FileSystemWatcher(path));
        // Before the first watch: it may report a folder it could not watch while it starts.
        _retry = new Timer(static state => ((RootWatcher)state!).Retry(), this, Timeout.Infinite, Timeout.Infinite);
        try
        {
            _watcher = Listen();
        }
        catch
        {
            _retry.Dispose();
            throw;
        }
    }

    /// <summary>Raised on the watcher's thread after <see cref="Generation"/> moved on.</summary>
    public event Action? Changed;

    /// <summary>
    /// The changes reported so far. A lookup notes it before it starts and caches its answer only if it has not
    /// moved: a change reported meanwhile may have made the answer stale. It moves on a lost watch, and again once a
    /// new watch listens, so what was looked up while none did is not kept.
    /// </summary>
    public long Generation => Interlocked.Read(ref _generation);

    /// <summary>
    /// False from a lost watch until a new one listens: changes may go unreported, so the caches take no entries.
    /// Set before <see cref="Generation"/> moves on the loss, so a lookup that sees the new count sees this too.
    /// </summary>
    public bool IsListening => Volatile.Read(ref _listening);

    /// <summary>
    /// Whether an answer looked up when the generation was <paramref name="generation"/> may be cached: nothing has
    /// changed since, and a change now would be reported (and would empty the caches).
    /// </summary>
    public bool MayCache(long generation) => Generation == generation && IsListening;

    /// <summary>Completes once the next change has been reported and the caches have emptied.</summary>
    public Task NextChange => Volatile.Read(ref _nextChange).Task;

    /// <summary>Completes once a new watch listens after a lost one, and the caches have emptied.</summary>
    public Task NextRestore => Volatile.Read(ref _nextRestore).Task;

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
        }
        _retry.Dispose();
        _watcher.Dispose();
    }

    /// <summary>
    /// Watches the root path afresh, then empties the caches: after a root swap the old watches are on the old tree's
    /// folders and what the caches hold came from it; after a lost watch, this is the retry. If no watch can be made,
    /// the watcher stays (or goes) deaf and retries later.
    /// </summary>
    public void Relisten()
    {
        FileSystemWatcher? stale = null;
        Exception? lost = null;
        var restored = false;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            var losses = _losses;
            try
            {
                var fresh = Listen();
                stale = _watcher;
                _watcher = fresh;
                // Unless the new watch itself lost a folder while it started (its Error came in on this thread).
                if (_losses == losses && !_listening)
                {
                    Volatile.Write(ref _listening, true);
                    _retryDelay = FirstRetryDelay;
                    restored = true;
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
            {
                // Out of watches, or the root is gone for now: the old watcher stays, deaf to this tree.
                if (_listening)
                {
                    Volatile.Write(ref _listening, false);
                    lost = e;
                }
            }
            if (!_listening)
            {
                ArmRetry();
            }
        }
        // Outside the lock: its Error handler, on its own thread, may be waiting for the lock.
        stale?.Dispose();
        if (lost is not null)
        {
            LogWatchLost(_logger, _root, lost.Message, lost);
        }
        if (restored)
        {
            LogWatchRestored(_logger, _root);
        }
        OnChanged();
        if (restored)
        {
            Interlocked.Exchange(ref _nextRestore, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        }
    }

    private FileSystemWatcher Listen()
    {
        var watcher = _createWatcher(_root);
        try
        {
            watcher.IncludeSubdirectories = true;
            watcher.NotifyFilter = NotifyFilters.FileName | NotifyFilters.DirectoryName | NotifyFilters.Attributes | NotifyFilters.LastWrite;
            FileSystemEventHandler changed = (_, _) => OnChanged();
            watcher.Created += changed;
            watcher.Deleted += changed;
            watcher.Changed += changed;
            watcher.Renamed += (_, _) => OnChanged();
            watcher.Error += (_, e) => OnLost(e.GetException());
            watcher.EnableRaisingEvents = true;
            return watcher;
        }
        catch
        {
            watcher.Dispose();
            throw;
        }
    }

    private void OnLost(Exception error)
    {
        bool first;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            _losses++;
            first = _listening;
            Volatile.Write(ref _listening, false);
            if (first)
            {
                ArmRetry();
            }
        }
        if (first)
        {
            LogWatchLost(_logger, _root, error.Message, error);
        }
        // The lost events could hide any change: forget everything, and learn nothing new until a watch listens.
        OnChanged();
    }

    private void Retry()
    {
        if (!IsListening)
        {
            Relisten();
        }
    }

    /// <summary>Under the lock.</summary>
    private void ArmRetry()
    {
        _retry.Change(_retryDelay, Timeout.InfiniteTimeSpan);
        _retryDelay = TimeSpan.FromTicks(Math.Min(_retryDelay.Ticks * 2, LongestRetryDelay.Ticks));
    }

    private void OnChanged()
    {
        // Counted before the caches empty: an entry added concurrently either sees the new count and takes itself
        // back, or is added before the emptying and goes with it.
        Interlocked.Increment(ref _generation);
        Changed?.Invoke();
        Interlocked.Exchange(ref _nextChange, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }

    [LoggerMessage(12, LogLevel.Warning, "The inotify watch on {Root} was lost ({Reason}); changes below it may go unreported, so the path and file caches are bypassed until a new watch listens.", EventName = "WatchLost")]
    private static partial void LogWatchLost(ILogger logger, string root, string reason, Exception error);

    [LoggerMessage(13, LogLevel.Information, "The inotify watch on {Root} listens again; the path and file caches are back in use.", EventName = "WatchRestored")]
    private static partial void LogWatchRestored(ILogger logger, string root);
}
