using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;

namespace StaticFiles.Amped.Caching;

/// <summary>
/// The positive half of Flash's caches: request path → <see cref="CachedPath"/> (open files, validators, ready-made
/// headers), and the bytes of small files. Bounded in entries (a clock sweep evicts one that no request used since
/// the hand last passed) and in content bytes (a file that does not fit is served from its fd instead). Emptied on
/// every change under the root (<see cref="RootWatcher"/>).
/// </summary>
/// <remarks>
/// Requests on several loops share it, so it is a <see cref="ConcurrentDictionary{TKey,TValue}"/> and hits take no
/// lock. Entries' fds are closed by reference count (<see cref="CachedPath.Release"/>), never by the cache alone: a
/// response streaming from an entry that was just evicted must not find its fd closed, or worse, reused.
/// </remarks>
internal sealed class FileCache
{
    private readonly ConcurrentDictionary<string, CachedPath> _entries = new(StringComparer.Ordinal);
    private readonly RootWatcher _watcher;
    private readonly int _capacity;
    private readonly long _contentBudget;
    private readonly long _maxFileSize;
    // ConcurrentDictionary.Count takes every lock; the bound only needs an estimate.
    private int _count;
    private long _charged;
    private long _evictions;

    public FileCache(RootWatcher watcher, int capacity, long contentBudget, long maxFileSize)
    {
        _watcher = watcher;
        _capacity = capacity;
        _contentBudget = contentBudget;
        _maxFileSize = maxFileSize;
        watcher.Changed += Clear;
    }

    /// <summary>Entries now (an estimate while requests add and evict).</summary>
    internal int Count => Volatile.Read(ref _count);

    /// <summary>Content bytes now held.</summary>
    internal long ContentBytes => Interlocked.Read(ref _charged);

    /// <summary>Entries evicted to make room so far.</summary>
    internal long Evictions => Interlocked.Read(ref _evictions);

    /// <summary>The entry for <paramref name="key"/>, acquired for the caller, who must <see cref="CachedPath.Release"/> it.</summary>
    public bool TryGet(string key, [NotNullWhen(true)] out CachedPath? entry)
    {
        if (_entries.TryGetValue(key, out entry) && entry.TryAcquire())
        {
            entry.Used = true;
            return true;
        }
        entry = null;
        return false;
    }

    /// <summary>
    /// Adds an entry that a lookup begun at <paramref name="generation"/> produced, unless the root changed since
    /// (the lookup may have seen the file as it was before the change), or while no watch listens (a change to come
    /// would go unreported); evicts one first when full.
    /// </summary>
    public void Add(string key, CachedPath entry, long generation)
    {
        if (_capacity == 0 || !_watcher.MayCache(generation))
        {
            return;
        }
        if (Volatile.Read(ref _count) >= _capacity)
        {
            EvictOne();
        }
        if (!entry.TryAcquire())
        {
            return;
        }
        lock (entry)
        {
            entry.State = CacheState.Cached;
        }
        if (!_entries.TryAdd(key, entry))
        {
            // Another request for the same path added its own entry first.
            lock (entry)
            {
                entry.State = CacheState.Outside;
            }
            entry.Release();
            return;
        }
        Interlocked.Increment(ref _count);
        if (_watcher.Generation != generation)
        {
            _ = Remove(key, entry);
        }
    }

    /// <summary>Whether <paramref name="file"/> is small enough, and not yet read, for its bytes to be worth caching.</summary>
    public bool WantsContent(CachedPath entry, CachedFile file)
        => file.Length <= _maxFileSize && file.Content is null && entry.State == CacheState.Cached;

    /// <summary>Charges <paramref name="bytes"/> of content to the budget for <paramref name="entry"/>, if it is still cached and they fit.</summary>
    public bool TryCharge(CachedPath entry, long bytes)
    {
        lock (entry)
        {
            if (entry.State != CacheState.Cached)
            {
                return false;
            }
            if (Interlocked.Add(ref _charged, bytes) > _contentBudget)
            {
                Interlocked.Add(ref _charged, -bytes);
                return false;
            }
            entry.ChargedBytes += bytes;
            return true;
        }
    }

    /// <summary>Gives back a charge whose read failed; a removed entry gave back all of its charges already.</summary>
    public void Refund(CachedPath entry, long bytes)
    {
        lock (entry)
        {
            if (entry.State == CacheState.Cached)
            {
                entry.ChargedBytes -= bytes;
                Interlocked.Add(ref _charged, -bytes);
            }
        }
    }

    /// <summary>Removes every entry (a change under the root, or the middleware's disposal).</summary>
    internal void Clear()
    {
        foreach (var pair in _entries)
        {
            _ = Remove(pair.Key, pair.Value);
        }
    }

    /// <summary>
    /// The clock: entries hit since the hand last passed get their bit cleared and stay; the first one without it
    /// goes. When every entry was hit, the sweep has cleared them all and the first is as good as any.
    /// </summary>
    private void EvictOne()
    {
        KeyValuePair<string, CachedPath>? first = null;
        foreach (var pair in _entries)
        {
            first ??= pair;
            if (!pair.Value.Used)
            {
                Evict(pair.Key, pair.Value);
                return;
            }
            pair.Value.Used = false;
        }
        if (first is { } oldest)
        {
            Evict(oldest.Key, oldest.Value);
        }
    }

    private void Evict(string key, CachedPath entry)
    {
        if (Remove(key, entry))
        {
            Interlocked.Increment(ref _evictions);
        }
    }

    private bool Remove(string key, CachedPath entry)
    {
        if (!_entries.TryRemove(new KeyValuePair<string, CachedPath>(key, entry)))
        {
            return false;
        }
        Interlocked.Decrement(ref _count);
        lock (entry)
        {
            entry.State = CacheState.Removed;
            Interlocked.Add(ref _charged, -entry.ChargedBytes);
            entry.ChargedBytes = 0;
        }
        entry.Release();
        return true;
    }
}
