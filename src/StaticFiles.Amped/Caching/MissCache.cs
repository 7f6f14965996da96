using System.Collections.Concurrent;

namespace StaticFiles.Amped.Caching;

/// <summary>
/// The negative half of Flash's path-translation cache: request paths that name nothing this middleware serves
/// (no such file, a folder without a default document, an unknown type). Without it every request for the app's
/// other endpoints (<c>/api/…</c>, <c>/plaintext</c>) would cost a helper round trip to learn that again. Any change
/// under the root (inotify through <see cref="FileSystemWatcher"/>) empties it, so a new file is served as soon as
/// the kernel reports it.
/// </summary>
internal sealed class MissCache : IDisposable
{
    private readonly ConcurrentDictionary<string, byte> _paths = new(StringComparer.Ordinal);
    private readonly int _capacity;
    private readonly FileSystemWatcher _watcher;
    // ConcurrentDictionary.Count takes every lock; the bound only needs an estimate.
    private int _count;
    private long _invalidations;
    private TaskCompletionSource _nextClear = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public MissCache(string root, int capacity)
    {
        _capacity = capacity;
        _watcher = new FileSystemWatcher(root)
        {
            IncludeSubdirectories = true,
            NotifyFilter = NotifyFilters.FileName | NotifyFilters.DirectoryName | NotifyFilters.Attributes | NotifyFilters.LastWrite,
        };
        FileSystemEventHandler changed = (_, _) => Clear();
        _watcher.Created += changed;
        _watcher.Deleted += changed;
        _watcher.Changed += changed;
        _watcher.Renamed += (_, _) => Clear();
        // A lost event (the inotify queue overflowed) could hide a new file: forget everything.
        _watcher.Error += (_, _) => Clear();
        _watcher.EnableRaisingEvents = true;
    }

    /// <summary>Times the cache was emptied because something under the root changed.</summary>
    public long Invalidations => Interlocked.Read(ref _invalidations);

    /// <summary>Completes the next time a change empties the cache.</summary>
    public Task NextInvalidation => Volatile.Read(ref _nextClear).Task;

    public bool Contains(string path) => _paths.ContainsKey(path);

    /// <summary>
    /// Remembers a miss found by a lookup that began at <paramref name="generation"/> (<see cref="Invalidations"/>
    /// then), unless the cache is full: a flood of made-up paths must not grow it without bound.
    /// </summary>
    /// <remarks>
    /// A change reported while the lookup ran may have created the file after the lookup missed it; remembering that
    /// miss would hide the file until the next change. So an entry is added only if no change came since the
    /// lookup began, and taken back if one came while adding (<see cref="Clear"/> counts before it empties).
    /// </remarks>
    public void Add(string path, long generation)
    {
        if (Interlocked.Read(ref _invalidations) != generation || Volatile.Read(ref _count) >= _capacity || !_paths.TryAdd(path, 0))
        {
            return;
        }
        Interlocked.Increment(ref _count);
        if (Interlocked.Read(ref _invalidations) != generation)
        {
            _paths.TryRemove(path, out _);
        }
    }

    public void Dispose() => _watcher.Dispose();

    private void Clear()
    {
        Interlocked.Increment(ref _invalidations);
        _paths.Clear();
        Volatile.Write(ref _count, 0);
        Interlocked.Exchange(ref _nextClear, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }
}
