using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.StaticFiles;

namespace StaticFiles.Amped;

/// <summary>
/// Options of <c>UseAmpedStaticFiles</c>. Where a name matches <c>StaticFileOptions</c> it means the same, and the
/// defaults are as safe: unknown file types and dot files are not served unless asked.
/// </summary>
public sealed class AmpedStaticFileOptions
{
    private int _metadataHelperThreads = 1;
    private int _dataHelperThreads = 4;
    private int _helperQueueCapacity = 1024;
    private int _missCacheEntries = 4096;
    private int _fileCacheEntries = 1024;
    private long _contentCacheBytes = 64 * 1024 * 1024;
    private long _maxCachedFileSize = 128 * 1024;
    private int _maxRanges = 16;

    /// <summary>The folder to serve. Default: null, meaning the app's web root (<c>IWebHostEnvironment.WebRootPath</c>).</summary>
    public string? RootPath { get; set; }

    /// <summary>The URL prefix the files are served under. Default: empty (the site root).</summary>
    public PathString RequestPath { get; set; }

    /// <summary>Maps file names to content types. Default: a <see cref="FileExtensionContentTypeProvider"/>.</summary>
    public IContentTypeProvider ContentTypeProvider { get; set; } = new FileExtensionContentTypeProvider();

    /// <summary>Whether files whose type <see cref="ContentTypeProvider"/> does not know are served. Default: false.</summary>
    public bool ServeUnknownFileTypes { get; set; }

    /// <summary>The content type of unknown file types when <see cref="ServeUnknownFileTypes"/> is on. Default: null (<c>application/octet-stream</c>).</summary>
    public string? DefaultContentType { get; set; }

    /// <summary>
    /// Whether a path with a segment that starts with a dot (<c>/.git/config</c>, <c>/.env</c>) is served. Default:
    /// false: such requests fall through to the next middleware.
    /// </summary>
    public bool ServeDotFiles { get; set; }

    /// <summary>
    /// The documents served for a folder, in order of preference. Default: <c>index.html</c>, <c>index.htm</c>,
    /// <c>default.html</c>, <c>default.htm</c>.
    /// </summary>
    public IList<string> DefaultFileNames { get; } = ["index.html", "index.htm", "default.html", "default.htm"];

    /// <summary>
    /// Whether a request for a folder without its trailing slash is redirected (301) to the path with one, as
    /// <c>UseDefaultFiles</c> does, when the folder has a default document. Default: true.
    /// </summary>
    public bool RedirectToAppendTrailingSlash { get; set; } = true;

    /// <summary>
    /// Whether a file's precompressed sibling (<c>site.css.br</c>, <c>site.css.gz</c>) is served, with
    /// <c>Content-Encoding</c>, to a client whose Accept-Encoding prefers it; responses for files that have one say
    /// <c>Vary: Accept-Encoding</c>. Default: true.
    /// </summary>
    public bool ServePrecompressedFiles { get; set; } = true;

    /// <summary>The <c>Cache-Control</c> value sent with every file. Default: null (none: caching is opt-in).</summary>
    public string? CacheControl { get; set; }

    /// <summary>Called before the headers of a file are sent, to add or change response headers. Default: null.</summary>
    public Action<StaticFileResponseContext>? OnPrepareResponse { get; set; }

    /// <summary>Where blocking calls run. Default: <see cref="AmpedMode.Amped"/>.</summary>
    public AmpedMode Mode { get; set; } = AmpedMode.Amped;

    /// <summary>Helper threads for <c>open</c> and <c>statx</c>, at least 1. Default: 1.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is less than 1.</exception>
    public int MetadataHelperThreads
    {
        get => _metadataHelperThreads;
        set => _metadataHelperThreads = AtLeastOne(value);
    }

    /// <summary>Helper threads for reads that miss the page cache, at least 1. Default: 4.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is less than 1.</exception>
    public int DataHelperThreads
    {
        get => _dataHelperThreads;
        set => _dataHelperThreads = AtLeastOne(value);
    }

    /// <summary>
    /// Jobs each helper queue holds before it refuses more, at least 1; a refused request gets 503. Default: 1024.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is less than 1.</exception>
    public int HelperQueueCapacity
    {
        get => _helperQueueCapacity;
        set => _helperQueueCapacity = AtLeastOne(value);
    }

    /// <summary>
    /// The most paths that name nothing this middleware serves (the app's other endpoints, missing files, absent
    /// precompressed siblings) it remembers in its miss cache, so that such a request costs no disk call. Forgotten
    /// whenever something under the root changes. 0 turns this cache off. Default: 4096.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is negative.</exception>
    public int MissCacheEntries
    {
        get => _missCacheEntries;
        set => _missCacheEntries = NotNegative(value);
    }

    /// <summary>
    /// The most request paths that name a file it remembers, each with the file (and its precompressed siblings)
    /// held open, its validators and its response headers ready: a hit makes no <c>open</c> or <c>statx</c>. Each
    /// entry holds up to three file descriptors, counted against the process's limit (<c>ulimit -n</c>) with the
    /// connections. Forgotten whenever something under the root changes. 0 turns this cache off. Default: 1024.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is negative.</exception>
    public int FileCacheEntries
    {
        get => _fileCacheEntries;
        set => _fileCacheEntries = NotNegative(value);
    }

    /// <summary>
    /// The most bytes of file contents kept in memory, for files of at most <see cref="MaxCachedFileSize"/> among the
    /// cached paths: such a hit makes no <c>read</c> either. 0 keeps no contents. Default: 64 MiB.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is negative.</exception>
    public long ContentCacheBytes
    {
        get => _contentCacheBytes;
        set => _contentCacheBytes = NotNegative(value);
    }

    /// <summary>
    /// The largest file whose contents are kept in memory, from 0 to <see cref="Array.MaxLength"/> (just under
    /// 2 GiB); a file larger than <see cref="ContentCacheBytes"/> is never kept, whatever this says. Default: 128 KiB.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is negative or larger than <see cref="Array.MaxLength"/>.</exception>
    public long MaxCachedFileSize
    {
        get => _maxCachedFileSize;
        set => _maxCachedFileSize = ArrayLength(value);
    }

    /// <summary>The most parts a multi-range request may ask for before the whole file is sent instead, at least 1. Default: 16.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is less than 1.</exception>
    public int MaxRanges
    {
        get => _maxRanges;
        set => _maxRanges = AtLeastOne(value);
    }

    // Each returns its argument, or throws with the setter's parameter name, "value".
    private static int AtLeastOne(int value)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
        return value;
    }

    private static T NotNegative<T>(T value) where T : System.Numerics.INumberBase<T>
    {
        ArgumentOutOfRangeException.ThrowIfNegative(value);
        return value;
    }

    // A cached file is one array: its length must fit one.
    private static long ArrayLength(long value)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(value);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(value, Array.MaxLength);
        return value;
    }
}
