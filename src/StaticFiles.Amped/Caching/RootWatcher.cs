namespace StaticFiles.Amped.Caching;

/// <summary>
/// Watches everything under the root (inotify through <see cref="FileSystemWatcher"/>) and counts the changes. The
/// path caches empty themselves on each one: a change, a deletion or a new file is served as it is now as soon as
/// the kernel reports it, a few milliseconds after the write.
/// </summary>
/// <remarks>
/// One counter for every change under the root, not one per file: a rename, a new default document or a new
/// precompressed sibling changes what other paths resolve to, and working that out per event is where caches go
/// stale. Sites change rarely; an emptied cache refills from the next requests.
/// </remarks>
internal sealed class RootWatcher : IDisposable
{
    private readonly FileSystemWatcher _watcher;
    private long _generation;
    private TaskCompletionSource _nextChange = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public RootWatcher(string root)
    {
        _watcher = new FileSystemWatcher(root)
        {
            IncludeSubdirectories = true,
            NotifyFilter = NotifyFilters.FileName | NotifyFilters.DirectoryName | NotifyFilters.Attributes | NotifyFilters.LastWrite,
        };
        FileSystemEventHandler changed = (_, _) => OnChanged();
        _watcher.Created += changed;
        _watcher.Deleted += changed;
        _watcher.Changed += changed;
        _watcher.Renamed += (_, _) => OnChanged();
        // A lost event (the inotify queue overflowed) could hide any change: forget everything.
        _watcher.Error += (_, _) => OnChanged();
        _watcher.EnableRaisingEvents = true;
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

    private void OnChanged()
    {
        // Counted before the caches empty: an entry added concurrently either sees the new count and takes itself
        // back, or is added before the emptying and goes with it.
        Interlocked.Increment(ref _generation);
        Changed?.Invoke();
        Interlocked.Exchange(ref _nextChange, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }
}
