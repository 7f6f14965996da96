using StaticFiles.Amped.Disk;

namespace StaticFiles.Amped.Caching;

/// <summary>
/// What a request path resolves to: the file (a default document for a folder), its precompressed siblings, and
/// its content type. Reference counted: the cache holds one reference while the entry is in it, and every request
/// serving it holds one, so an entry evicted or invalidated mid-response keeps its fds open until the last such
/// request is done; only then are they closed, and the fd numbers free for reuse.
/// </summary>
internal sealed class CachedPath
{
    private readonly IFileCalls _calls;
    private int _references = 1;

    /// <summary>A new entry, held once by its creator.</summary>
    public CachedPath(IFileCalls calls, CachedFile file, CachedFile? brotli, CachedFile? gzip, string contentType)
    {
        _calls = calls;
        File = file;
        Brotli = brotli;
        Gzip = gzip;
        ContentType = contentType;
    }

    public CachedFile File { get; }

    public CachedFile? Brotli { get; }

    public CachedFile? Gzip { get; }

    public bool HasSiblings => Brotli is not null || Gzip is not null;

    /// <summary>The content type of <see cref="File"/>, which a precompressed sibling keeps.</summary>
    public string ContentType { get; }

    /// <summary>The clock bit of <see cref="FileCache"/>'s eviction: set by each hit, cleared as the clock passes.</summary>
    internal bool Used { get; set; }

    /// <summary>Whether the entry is (or was) in the cache; guarded by the entry's lock.</summary>
    internal CacheState State { get; set; }

    /// <summary>Content bytes charged to the cache's budget for this entry; guarded by the entry's lock.</summary>
    internal long ChargedBytes { get; set; }

    /// <summary>One more reference, unless the last one is gone already (the fds are closed or closing).</summary>
    public bool TryAcquire() => ReferenceCount.TryAcquire(ref _references);

    /// <summary>Drops a reference; the last one closes the files (read-only files: <c>close</c> does not wait for the disk).</summary>
    public void Release()
    {
        if (Interlocked.Decrement(ref _references) != 0)
        {
            return;
        }
        _calls.Close(File.Fd);
        if (Brotli is not null)
        {
            _calls.Close(Brotli.Fd);
        }
        if (Gzip is not null)
        {
            _calls.Close(Gzip.Fd);
        }
    }
}

/// <summary>Where a <see cref="CachedPath"/> stands with the cache.</summary>
internal enum CacheState
{
    /// <summary>Never added (the cache is off, full of busier entries, or the root changed during the lookup).</summary>
    Outside,

    Cached,

    /// <summary>Removed; its charged bytes went back to the budget.</summary>
    Removed,
}
