using System.Collections.Concurrent;

namespace StaticFiles.Amped.Caching;

/// <summary>
/// The negative half of Flash's path-translation cache: request paths that name nothing this middleware serves
/// (no such file, a folder without a default document, an unknown type). Without it every request for the app's
/// other endpoints (<c>/api/…</c>, <c>/plaintext</c>) would cost a helper round trip to learn that again. Any change
/// under the root empties it (<see cref="RootWatcher"/>), so a new file is served as soon as the kernel reports it.
/// </summary>
internal sealed class MissCache
{
    private readonly ConcurrentDictionary<string, byte> _paths = new(StringComparer.Ordinal);
    private readonly int _capacity;
    private readonly RootWatcher _watcher;
    // ConcurrentDictionary.Count takes every lock; the bound only needs an estimate.
    private int _count;

    public MissCache(RootWatcher watcher, int capacity)
    {
        _capacity = capacity;
        _watcher = watcher;
        watcher.Changed += Clear;
    }

    public bool Contains(string path) => _paths.ContainsKey(path);

    /// <summary>
    /// Remembers a miss found by a lookup that began at <paramref name="generation"/> (<see cref="RootWatcher.Generation"/>
    /// then), unless the cache is full: a flood of made-up paths must not grow it without bound.
    /// </summary>
    /// <remarks>
    /// A change reported while the lookup ran may have created the file after the lookup missed it; remembering that
    /// miss would hide the file until the next change. So an entry is added only if no change came since the
    /// lookup began, and taken back if one came while adding; and none while the watch is lost, since then no change
    /// would ever take it back.
    /// </remarks>
    public void Add(string path, long generation)
    {
        if (!_watcher.MayCache(generation) || Volatile.Read(ref _count) >= _capacity || !_paths.TryAdd(path, 0))
        {
            return;
        }
        AfterInsertForTests?.Invoke(path);
        Interlocked.Increment(ref _count);
        if (_watcher.Generation != generation)
        {
            Forget(path);
        }
    }

    /// <summary>Runs between an entry going in and its being counted; a test parks a change there.</summary>
    internal Action<string>? AfterInsertForTests { get; set; }

    /// <remarks>
    /// Entry by entry, each removal counted: an add in flight may have inserted its entry and not yet counted it, and
    /// resetting the count to 0 here would leave that entry's count behind once no entry is left.
    /// </remarks>
    private void Clear()
    {
        // Enumerating the dictionary takes no lock; its Keys would take every bucket's lock and copy them all.
        foreach (var (path, _) in _paths)
        {
            Forget(path);
        }
    }

    /// <summary>Removes <paramref name="path"/>, counting it only if this call removed it.</summary>
    private void Forget(string path)
    {
        if (_paths.TryRemove(path, out _))
        {
            Interlocked.Decrement(ref _count);
        }
    }
}
