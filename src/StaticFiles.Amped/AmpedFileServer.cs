using EpollTransport;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using StaticFiles.Amped.Caching;
using StaticFiles.Amped.Diagnostics;
using StaticFiles.Amped.Disk;
using StaticFiles.Amped.Interop;
using StaticFiles.Amped.Paths;

namespace StaticFiles.Amped;

/// <summary>
/// The middleware's work for one request: find the file beneath the root, decide the response from its validators
/// (RFC 9110), and stream the bytes. Every call that may block runs on a helper (or, in <see cref="AmpedMode.Sped"/>,
/// right here); the request resumes on its loop: the epoll reactor that runs it inline, or the middleware's own.
/// A path found before is answered from Flash's caches (<see cref="FileCache"/>, <see cref="MissCache"/>) with no
/// lookup at all.
/// </summary>
internal sealed partial class AmpedFileServer : IDisposable
{
    private readonly AmpedStaticFileOptions _options;
    private readonly string _root;
    private readonly ServedRoot _servedRoot;
    private readonly HelperPool? _helpers;
    private readonly Lazy<EpollLoop> _ownLoop = new(() => EpollLoop.Start("amped-loop"));
    private readonly ILogger _logger;
    private readonly RootWatcher? _watcher;
    private readonly MissCache? _misses;
    private readonly FileCache? _files;
    private readonly IFileCalls _calls;
    private readonly AmpedMetrics _metrics;
    private long _lookups;

    /// <summary>A server for <paramref name="root"/>; <paramref name="createWatcher"/> makes the <see cref="RootWatcher"/>'s watchers (a test's can lose its watch).</summary>
    public AmpedFileServer(AmpedStaticFileOptions options, string root, ILogger logger, IFileCalls? calls = null, IMeterFactory? meterFactory = null,
        Func<string, FileSystemWatcher>? createWatcher = null)
    {
        _options = options;
        _calls = calls ?? LinuxFileCalls.Instance;
        _root = Path.GetFullPath(root);
        _logger = logger;
        _servedRoot = new ServedRoot(_root, logger);
        if (options.PathCacheEntries > 0 || options.FileCacheEntries > 0)
        {
            _watcher = new RootWatcher(_root, logger, createWatcher);
            _servedRoot.Replaced += _watcher.Relisten;
        }
        if (options.PathCacheEntries > 0)
        {
            _misses = new MissCache(_watcher!, options.PathCacheEntries);
        }
        if (options.FileCacheEntries > 0)
        {
            _files = new FileCache(_watcher!, options.FileCacheEntries, options.ContentCacheBytes, options.MaxCachedFileSize);
        }
        if (options.Mode == AmpedMode.Amped)
        {
            _helpers = new HelperPool(options.MetadataHelperThreads, options.DataHelperThreads, options.HelperQueueCapacity);
        }
        _metrics = new AmpedMetrics(meterFactory, options.RequestPath.Value ?? "");
        var watcher = _watcher;
        _metrics.Observe(_helpers, _files, () => watcher?.Generation ?? 0);
    }

    public Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var request = context.Request;
        if (!(HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method))
            || !request.Path.StartsWithSegments(_options.RequestPath, out var subpath))
        {
            return next(context);
        }
        // The key keeps the trailing slash: "/docs" (a redirect) and "/docs/" (the document) are different answers.
        // Only a path that passed RequestPaths once is ever cached, so a hit needs no second look at it.
        var key = subpath.Value ?? "";
        if (_files is not null && _files.TryGet(key, out var cached))
        {
            _metrics.FileCacheHit();
            return ServeCachedAsync(context, cached);
        }
        return LookUpAsync(context, next, subpath, key);
    }

    /// <summary>Flash's fast path: no open, no stat, headers ready; for a small file not even a read.</summary>
    private async Task ServeCachedAsync(HttpContext context, CachedPath cached)
    {
        try
        {
            await ServeAsync(context, cached);
        }
        finally
        {
            cached.Release();
        }
    }

    private async Task LookUpAsync(HttpContext context, RequestDelegate next, PathString subpath, string key)
    {
        var request = context.Request;
        if (!RequestPaths.TryGetRelative(subpath, _options.ServeDotFiles, out var relative, out var endsWithSlash))
        {
            await next(context);
            return;
        }
        if (_misses?.Contains(key) == true)
        {
            _metrics.MissCacheHit();
            await next(context);
            return;
        }

        _metrics.Lookup();
        var generation = _watcher?.Generation ?? 0;
        var loop = EpollLoop.Current ?? _ownLoop.Value;
        var file = await OpenAsync(loop, relative, context.RequestAborted);
        if (file is not { } opened)
        {
            await RefuseAsync(context);
            return;
        }
        var name = relative;
        if (opened.IsRegularFile && endsWithSlash)
        {
            // "/index.html/" names a folder; serving the file there would give it a second URL whose relative
            // links resolve one level too deep.
            _calls.Close(opened.Fd);
            _misses?.Add(key, generation);
            await next(context);
            return;
        }
        if (opened.IsDirectory)
        {
            _calls.Close(opened.Fd);
            (opened, name) = await OpenDefaultDocumentAsync(loop, relative, context.RequestAborted);
            if (opened.IsRegularFile && !endsWithSlash)
            {
                _calls.Close(opened.Fd);
                if (_options.RedirectToAppendTrailingSlash)
                {
                    // As UseDefaultFiles: relative links in the document must resolve below the folder.
                    context.Response.StatusCode = StatusCodes.Status301MovedPermanently;
                    context.Response.Headers.Location = request.PathBase + request.Path + "/" + request.QueryString;
                    return;
                }
                _misses?.Add(key, generation);
                await next(context);
                return;
            }
        }
        if (!opened.IsRegularFile)
        {
            if (opened.IsOpen)
            {
                _calls.Close(opened.Fd);
            }
            if (opened.IsOpen || IsLastingMiss(opened.Errno))
            {
                _misses?.Add(key, generation);
            }
            await next(context);
            return;
        }
        if (!TryGetContentType(name, out var contentType))
        {
            _calls.Close(opened.Fd);
            _misses?.Add(key, generation);
            await next(context);
            return;
        }

        var entry = await CreateEntryAsync(context, loop, opened, key, name, contentType, generation);
        try
        {
            _files?.Add(key, entry, generation);
            await ServeAsync(context, entry);
        }
        finally
        {
            entry.Release();
        }
    }

    /// <summary>Lookups made on disk (helper jobs, or direct calls in Sped mode); for tests.</summary>
    internal long Lookups => Interlocked.Read(ref _lookups);

    /// <summary>Completes the next time a change under the root empties the path cache; for tests.</summary>
    internal Task NextCacheInvalidation => _watcher?.NextChange ?? Task.CompletedTask;

    /// <summary>Completes the next time the root path is found naming another directory, once that one is served; for tests.</summary>
    internal Task NextRootReplacement => _servedRoot.NextReplacement;

    /// <summary>Completes the next time a new watch listens after a lost one; for tests.</summary>
    internal Task NextWatchRestored => _watcher?.NextRestore ?? Task.CompletedTask;

    /// <summary>The positive cache, or null when it is off; for tests.</summary>
    internal FileCache? Files => _files;

    public void Dispose()
    {
        _metrics.Dispose();
        // Stops the root checks first: a swap found now would re-watch a tree only for the watcher to go.
        _servedRoot.Dispose();
        _watcher?.Dispose();
        _helpers?.Dispose();
        if (_ownLoop.IsValueCreated)
        {
            _ownLoop.Value.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    /// <summary>
    /// The entry for a file a lookup found: the file and the precompressed siblings that exist beside it (all kept
    /// open, whichever this request's Accept-Encoding picks), held once for the caller.
    /// </summary>
    private async ValueTask<CachedPath> CreateEntryAsync(HttpContext context, EpollLoop loop, OpenedFile opened, string key,
        string name, string contentType, long generation)
    {
        var file = new CachedFile(opened, Path.Combine(_root, name));
        OpenedFile? brotli = null;
        try
        {
            if (_options.ServePrecompressedFiles)
            {
                var aborted = context.RequestAborted;
                brotli = await OpenSiblingAsync(loop, key + ".br", name + ".br", generation, aborted);
                var gzip = await OpenSiblingAsync(loop, key + ".gz", name + ".gz", generation, aborted);
                return new CachedPath(_calls, file,
                    brotli is { } b ? new CachedFile(b, Path.Combine(_root, name + ".br")) : null,
                    gzip is { } g ? new CachedFile(g, Path.Combine(_root, name + ".gz")) : null,
                    contentType);
            }
            return new CachedPath(_calls, file, null, null, contentType);
        }
        catch
        {
            // The client went away while a sibling was being looked up.
            _calls.Close(opened.Fd);
            if (brotli is { } openedBrotli)
            {
                _calls.Close(openedBrotli.Fd);
            }
            throw;
        }
    }

    /// <summary>An open regular file at <paramref name="relative"/>, or null (then remembered as a miss when lasting).</summary>
    private async ValueTask<OpenedFile?> OpenSiblingAsync(EpollLoop loop, string key, string relative, long generation, CancellationToken aborted)
    {
        if (_misses?.Contains(key) == true || await OpenAsync(loop, relative, aborted) is not { } file)
        {
            return null;
        }
        if (file.IsRegularFile)
        {
            return file;
        }
        if (file.IsOpen)
        {
            _calls.Close(file.Fd);
        }
        if (file.IsOpen || IsLastingMiss(file.Errno))
        {
            _misses?.Add(key, generation);
        }
        return null;
    }

    /// <summary>Null when the helpers refused the job (their queue is full).</summary>
    private async ValueTask<OpenedFile?> OpenAsync(EpollLoop loop, string relative, CancellationToken aborted)
    {
        Interlocked.Increment(ref _lookups);
        // Held until the open beneath it has returned, on whichever thread it runs: a root swap meanwhile must not
        // close the fd (or let its number be reused) under the open.
        var root = _servedRoot.Acquire();
        try
        {
            if (_helpers is null)
            {
                return new OpenFileJob(_calls, root.Fd, relative).ExecuteHere();
            }
            if (OpenFileJob.TryOpenCached(_calls, root.Fd, relative, out var cached))
            {
                _metrics.OpenCached();
                return cached;
            }
            var job = new OpenFileJob(_calls, root.Fd, relative);
            var posted = Stopwatch.GetTimestamp();
            if (!_helpers.TryPost(job, DiskQueue.Metadata, loop, aborted, out var completion))
            {
                _metrics.Refused();
                return null;
            }
            // Completes only after the helper ran the job (or skipped it, cancelled): the open is over either way.
            var opened = await completion;
            _metrics.HelperJob(DiskQueue.Metadata, Stopwatch.GetElapsedTime(posted));
            return opened;
        }
        finally
        {
            root.Release();
        }
    }

    private async ValueTask<(OpenedFile File, string Name)> OpenDefaultDocumentAsync(EpollLoop loop, string folder, CancellationToken aborted)
    {
        foreach (var document in _options.DefaultFileNames)
        {
            var name = folder.Length == 0 ? document : folder + "/" + document;
            if (await OpenAsync(loop, name, aborted) is { } file)
            {
                if (file.IsRegularFile)
                {
                    return (file, name);
                }
                if (file.IsOpen)
                {
                    _calls.Close(file.Fd);
                }
            }
        }
        return (OpenedFile.Failed(FileResult.ENOENT), folder);
    }

    /// <summary>
    /// Errnos that say the path names nothing servable until something under the root changes (which empties the
    /// cache); running out of fds or memory, or an I/O error, is not one of them.
    /// </summary>
    private static bool IsLastingMiss(int errno)
        => errno is FileResult.ENOENT or FileResult.ENOTDIR or FileResult.EXDEV or FileResult.ELOOP or FileResult.EACCES
            or FileResult.ENAMETOOLONG;

    private bool TryGetContentType(string name, out string contentType)
    {
        if (_options.ContentTypeProvider.TryGetContentType(name, out var known))
        {
            contentType = known;
            return true;
        }
        contentType = _options.DefaultContentType ?? "application/octet-stream";
        return _options.ServeUnknownFileTypes;
    }

    private static Task RefuseAsync(HttpContext context)
    {
        // The helper queue is full: the disk cannot keep up, and waiting would only grow the backlog.
        context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
        context.Response.Headers.RetryAfter = "1";
        return Task.CompletedTask;
    }

    [LoggerMessage(1, LogLevel.Warning, "Reading {Path} failed after its headers were sent ({Error}); the response was aborted.", EventName = "ReadFailed")]
    private static partial void LogReadFailed(ILogger logger, PathString path, string error);
}
