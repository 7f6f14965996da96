namespace StaticFiles.Amped.Caching;

/// <summary>
/// Watches everything under the root (inotify through <see cref="FileSystemWatcher"/>) and counts the changes. The
/// path caches empty themselves on each one: a change, a deletion or a new file is served as it is now as soon as
/// the kernel reports it, a few milliseconds after the write. inotify watches inodes, not paths: when the root path
/// comes to name another directory (<see cref="Paths.ServedRoot"/>), <see cref="Retarget"/> watches that one instead.
/// </summary>
/// <remarks>
/// One counter for every change under the root, not one per file: a rename, a new default document or a new
/// precompressed sibling changes what other paths resolve to, and working that out per event is where caches go
/// stale. Sites change rarely; an emptied cache refills from the next requests.
/// </remarks>
internal sealed class RootWatcher : IDisposable
{
    private readonly string _root;
    private FileSystemWatcher _watcher;
    private long _generation;
    private TaskCompletionSource _nextChange = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public RootWatcher(string root)
    {
        _root = root;
        _watcher = Listen();
    }

    /// <summary>Raised on the watcher's thread after <see cref="Generation"/> moved on.</summary>
    public event Action? Changed;

    /// <summary>
    /// The changes reported so far. A lookup notes it before it starts and caches its answer only if it has not
    /// moved: a change reported meanwhile may have made the answer stale.
    /// </summary>
    public long Generation => Interlocked.Read(ref _generation);

    /// <summary>Completes once the next change has been reported and the caches have emptied.</summary>
    public Task NextChange => Volatile.Read(ref _nextChange).Task;

    public void Dispose() => _watcher.Dispose();

    /// <summary>
    /// Watches the root path afresh, then empties the caches: after a root swap the watches are on the old tree's
    /// folders (inotify watches inodes, not paths), and what the caches hold came from it.
    /// </summary>
    public void Retarget()
    {
        try
        {
            Interlocked.Exchange(ref _watcher, Listen()).Dispose();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            // The new tree cannot be watched (out of inotify watches): the old watcher stays, deaf to the new tree.
        }
        OnChanged();
    }

    private FileSystemWatcher Listen()
    {
        var watcher = new FileSystemWatcher(_root)
        {
            IncludeSubdirectories = true,
            NotifyFilter = NotifyFilters.FileName | NotifyFilters.DirectoryName | NotifyFilters.Attributes | NotifyFilters.LastWrite,
        };
        try
        {
            FileSystemEventHandler changed = (_, _) => OnChanged();
            watcher.Created += changed;
            watcher.Deleted += changed;
            watcher.Changed += changed;
            watcher.Renamed += (_, _) => OnChanged();
            // A lost event (the inotify queue overflowed) could hide any change: forget everything.
            watcher.Error += (_, _) => OnChanged();
            watcher.EnableRaisingEvents = true;
            return watcher;
        }
        catch
        {
            watcher.Dispose();
            throw;
        }
    }

    private void OnChanged()
    {
        // Counted before the caches empty: an entry added concurrently either sees the new count and takes itself
        // back, or is added before the emptying and goes with it.
        Interlocked.Increment(ref _generation);
        Changed?.Invoke();
        Interlocked.Exchange(ref _nextChange, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }
}
