using EpollTransport.Posix;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using System.Diagnostics.Metrics;
using StaticFiles.Amped.Caching;
using StaticFiles.Amped.Diagnostics;
using StaticFiles.Amped.Disk;
using StaticFiles.Amped.Paths;

namespace StaticFiles.Amped;

/// <summary>
/// The middleware's work for one request: find the file beneath the root, decide the response from its validators
/// (RFC 9110), and stream the bytes. <see cref="DiskDispatcher"/> decides where each disk call runs and where the
/// request goes on after it. A path found before is answered from Flash's caches (<see cref="FileCache"/>,
/// <see cref="MissCache"/>) with no lookup at all.
/// </summary>
internal sealed partial class AmpedFileServer : IDisposable
{
    private readonly AmpedStaticFileOptions _options;
    private readonly string _root;
    private readonly ServedRoot _servedRoot;
    private readonly DiskDispatcher _disk;
    private readonly ILogger _logger;
    private readonly RootWatcher? _watcher;
    private readonly MissCache? _misses;
    private readonly FileCache? _files;
    private readonly IFileCalls _calls;
    private readonly AmpedMetrics _metrics;
    private long _lookups;
    /// <summary>1 while lookups fail for want of fds, memory or a helper (an episode is logged once).</summary>
    private int _unavailable;
    private int _disposed;

    /// <summary>A server for <paramref name="root"/>; <paramref name="createWatcher"/> makes the <see cref="RootWatcher"/>'s watchers (a test's can lose its watch).</summary>
    public AmpedFileServer(AmpedStaticFileOptions options, string root, ILogger logger, IFileCalls? calls = null, IMeterFactory? meterFactory = null,
        Func<string, FileSystemWatcher>? createWatcher = null)
    {
        _options = options;
        _calls = calls ?? LinuxFileCalls.Instance;
        _root = Path.GetFullPath(root);
        _logger = logger;
        _servedRoot = new ServedRoot(_root, logger);
        if (options.MissCacheEntries > 0 || options.FileCacheEntries > 0)
        {
            _watcher = new RootWatcher(_root, logger, createWatcher);
            _servedRoot.Replaced += _watcher.Relisten;
        }
        if (options.MissCacheEntries > 0)
        {
            _misses = new MissCache(_watcher!, options.MissCacheEntries);
        }
        if (options.FileCacheEntries > 0)
        {
            _files = new FileCache(_watcher!, options.FileCacheEntries, options.ContentCacheBytes, options.MaxCachedFileSize);
        }
        _metrics = new AmpedMetrics(meterFactory, options.RequestPath.Value ?? "");
        _disk = new DiskDispatcher(options, _calls, _metrics, logger);
        var watcher = _watcher;
        _metrics.Observe(_disk.Helpers, _files, () => watcher?.Generation ?? 0);
    }

    public Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var request = context.Request;
        // As UseStaticFiles: a request that routing matched to an endpoint is the endpoint's, and costs no lookup.
        if (!(HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method))
            || context.GetEndpoint()?.RequestDelegate is not null
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
        var lookup = await ResolveAsync(relative, endsWithSlash, context.RequestAborted);
        switch (lookup.Outcome)
        {
            case LookupOutcome.Unavailable:
                AnswerUnavailable(context, relative, lookup.Errno);
                return;
            case LookupOutcome.Redirect:
                NoteHealthy();
                // As UseDefaultFiles: relative links in the document must resolve below the folder.
                context.Response.StatusCode = StatusCodes.Status301MovedPermanently;
                context.Response.Headers.Location = request.PathBase + request.Path + "/" + request.QueryString;
                return;
            case LookupOutcome.Miss:
                NoteHealthy();
                _misses?.Add(key, generation);
                await next(context);
                return;
        }
        NoteHealthy();
        var opened = lookup.File;
        if (!TryGetContentType(lookup.Name, out var contentType))
        {
            _calls.Close(opened.Fd);
            _misses?.Add(key, generation);
            await next(context);
            return;
        }

        var (entry, complete) = await CreateEntryAsync(opened, lookup.Name, contentType, generation, context.RequestAborted);
        try
        {
            if (complete)
            {
                _files?.Add(key, entry, generation);
            }
            await ServeAsync(context, entry);
        }
        finally
        {
            entry.Release();
        }
    }

    /// <summary>
    /// What the path names: a file to serve (a folder's default document included), a redirect to the folder's
    /// slash, a miss that lasts until something under the root changes, or no answer for now.
    /// </summary>
    private async ValueTask<Lookup> ResolveAsync(string relative, bool endsWithSlash, CancellationToken aborted)
    {
        var opened = await OpenAsync(relative, aborted);
        if (!opened.IsDirectory)
        {
            var file = AsFile(opened, relative);
            if (file.Outcome == LookupOutcome.Found && endsWithSlash)
            {
                // "/index.html/" names a folder; serving the file there would give it a second URL whose relative
                // links resolve one level too deep.
                _calls.Close(opened.Fd);
                return Lookup.Missing;
            }
            return file;
        }
        _calls.Close(opened.Fd);
        var document = await OpenDefaultDocumentAsync(relative, aborted);
        if (document.Outcome == LookupOutcome.Found && !endsWithSlash)
        {
            _calls.Close(document.File.Fd);
            return _options.RedirectToAppendTrailingSlash ? Lookup.Redirect : Lookup.Missing;
        }
        return document;
    }

    /// <summary>Opens made by lookups (on the loop, on a helper, or where the request runs in Sped mode); for tests.</summary>
    internal long Lookups => Interlocked.Read(ref _lookups);

    /// <summary>Completes the next time a change under the root empties the caches; for tests.</summary>
    internal Task NextCacheInvalidation => _watcher?.NextChange ?? Task.CompletedTask;

    /// <summary>Completes the next time the root path is found naming another directory, once that one is served; for tests.</summary>
    internal Task NextRootReplacement => _servedRoot.NextReplacement;

    /// <summary>Completes the next time a new watch listens after a lost one; for tests.</summary>
    internal Task NextWatchRestored => _watcher?.NextRestore ?? Task.CompletedTask;

    /// <summary>The positive cache, or null when it is off; for tests.</summary>
    internal FileCache? Files => _files;

    /// <summary>Where the disk calls run; for tests.</summary>
    internal DiskDispatcher Disk => _disk;

    /// <summary>
    /// Stops the helpers (bounded: see <see cref="HelperPool.StopTimeout"/>) and the middleware's loop, and closes
    /// every fd the caches hold; an entry that a response still streams from is closed when that response ends.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        _metrics.Dispose();
        // Stops the root checks first: a swap found now would re-watch a tree only for the watcher to go.
        _servedRoot.Dispose();
        _watcher?.Dispose();
        _disk.Dispose();
        _files?.Clear();
    }

    /// <summary>
    /// The entry for a file a lookup found: the file and the precompressed siblings that exist beside it (all kept
    /// open, whichever this request's Accept-Encoding picks), held once for the caller. <c>Complete</c> is false
    /// when a sibling could not be looked up for now: the entry serves this request but is not cached, so that the
    /// next request looks for the sibling again.
    /// </summary>
    private async ValueTask<(CachedPath Entry, bool Complete)> CreateEntryAsync(OpenedFile opened, string name, string contentType,
        long generation, CancellationToken aborted)
    {
        OpenedFile? brotli = null;
        OpenedFile? gzip = null;
        try
        {
            var complete = true;
            if (_options.ServePrecompressedFiles)
            {
                (brotli, var brotliKnown) = await OpenSiblingAsync(name + ".br", generation, aborted);
                (gzip, var gzipKnown) = await OpenSiblingAsync(name + ".gz", generation, aborted);
                complete = brotliKnown && gzipKnown;
            }
            var entry = new CachedPath(_calls, new CachedFile(opened, Path.Combine(_root, name)),
                brotli is { } b ? new CachedFile(b, Path.Combine(_root, name + ".br")) : null,
                gzip is { } g ? new CachedFile(g, Path.Combine(_root, name + ".gz")) : null,
                contentType);
            return (entry, complete);
        }
        catch
        {
            // The client went away while a sibling was being looked up, or describing a file failed: whatever was
            // opened for the entry is closed here, since no entry owns it.
            _calls.Close(opened.Fd);
            if (brotli is { } openedBrotli)
            {
                _calls.Close(openedBrotli.Fd);
            }
            if (gzip is { } openedGzip)
            {
                _calls.Close(openedGzip.Fd);
            }
            throw;
        }
    }

    /// <summary>
    /// An open regular file at <paramref name="relative"/>, or null; <c>Known</c> is false when the answer is not
    /// known for now (a transient error), which is never remembered as a miss.
    /// </summary>
    /// <remarks>
    /// A sibling's miss is keyed by its file name (<c>docs/index.html.br</c>), never by a request path: request keys
    /// start with a slash, so a real dot file such as <c>/docs/.br</c> can never be taken for a sibling's absence.
    /// </remarks>
    private async ValueTask<(OpenedFile? File, bool Known)> OpenSiblingAsync(string relative, long generation, CancellationToken aborted)
    {
        if (_misses?.Contains(relative) == true)
        {
            return (null, true);
        }
        var sibling = AsFile(await OpenAsync(relative, aborted), relative);
        switch (sibling.Outcome)
        {
            case LookupOutcome.Found:
                return (sibling.File, true);
            case LookupOutcome.Unavailable:
                return (null, false);
        }
        _misses?.Add(relative, generation);
        return (null, true);
    }

    /// <summary>The open and <c>statx</c> of <paramref name="relative"/> beneath the root being served now.</summary>
    private async ValueTask<OpenedFile> OpenAsync(string relative, CancellationToken aborted)
    {
        Interlocked.Increment(ref _lookups);
        // Held until the open beneath it has returned, on whichever thread it runs: a root swap meanwhile must not
        // close the fd (or let its number be reused) under the open.
        var root = _servedRoot.Acquire();
        try
        {
            return await _disk.OpenAsync(root.Fd, relative, aborted);
        }
        finally
        {
            root.Release();
        }
    }

    /// <summary>
    /// The folder's first default document that is a regular file; a miss when none is; unavailable as soon as one
    /// cannot be looked up now (serving the next name instead would serve the wrong document).
    /// </summary>
    private async ValueTask<Lookup> OpenDefaultDocumentAsync(string folder, CancellationToken aborted)
    {
        foreach (var document in _options.DefaultFileNames)
        {
            var name = folder.Length == 0 ? document : folder + "/" + document;
            var file = AsFile(await OpenAsync(name, aborted), name);
            if (file.Outcome != LookupOutcome.Miss)
            {
                return file;
            }
        }
        return Lookup.Missing;
    }

    /// <summary>
    /// What an open found at <paramref name="name"/>, served only if it is a regular file: the file, a lasting miss
    /// (whatever else it opened, a folder say, is closed), or no answer for now.
    /// </summary>
    private Lookup AsFile(OpenedFile opened, string name)
    {
        if (opened.IsRegularFile)
        {
            return Lookup.Found(opened, name);
        }
        if (opened.IsOpen)
        {
            _calls.Close(opened.Fd);
            return Lookup.Missing;
        }
        return IsLastingMiss(opened.Errno) ? Lookup.Missing : Lookup.Unavailable(opened.Errno);
    }

    /// <summary>
    /// Whether a failed open may be remembered as a miss: the path names nothing servable until something under the
    /// root changes, which empties the caches. Running out of fds or memory, or an I/O error, is not a lasting miss.
    /// </summary>
    private static bool IsLastingMiss(int errno) => Errnos.NamesNothing(errno);

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

    /// <summary>
    /// No answer for now: the process is short of fds or memory, or the helpers' queue is full (503 with Retry-After:
    /// the same request succeeds once that passes), or the disk failed (500). Logged once per episode.
    /// </summary>
    private void AnswerUnavailable(HttpContext context, string relative, int errno)
    {
        var shortage = IsShortage(errno);
        if (Interlocked.Exchange(ref _unavailable, 1) == 0)
        {
            LogDiskUnavailable(_logger, relative, PosixResult.FromErrno(errno).ToString());
        }
        var response = context.Response;
        response.Clear();
        response.StatusCode = shortage ? StatusCodes.Status503ServiceUnavailable : StatusCodes.Status500InternalServerError;
        if (shortage)
        {
            response.Headers.RetryAfter = "1";
        }
    }

    /// <summary>A lookup got a real answer: an episode of <see cref="AnswerUnavailable"/> is over.</summary>
    private void NoteHealthy()
    {
        if (Volatile.Read(ref _unavailable) != 0 && Interlocked.Exchange(ref _unavailable, 0) != 0)
        {
            LogDiskRecovered(_logger);
        }
    }

    /// <summary>Errnos of a resource that runs short for a while (EAGAIN includes a full helper queue).</summary>
    private static bool IsShortage(int errno)
        => errno is Errnos.EAGAIN or Errnos.EINTR || Errnos.IsResourceExhausted(errno);

    /// <summary>The outcome of resolving a request path.</summary>
    private enum LookupOutcome
    {
        Found,
        Miss,
        Redirect,
        Unavailable,
    }

    /// <summary>A resolved path: the open file and its name beneath the root when found, the errno when unavailable.</summary>
    private readonly record struct Lookup(LookupOutcome Outcome, OpenedFile File, string Name, int Errno)
    {
        public static Lookup Missing => new(LookupOutcome.Miss, default, "", 0);

        public static Lookup Redirect => new(LookupOutcome.Redirect, default, "", 0);

        public static Lookup Found(OpenedFile file, string name) => new(LookupOutcome.Found, file, name, 0);

        public static Lookup Unavailable(int errno) => new(LookupOutcome.Unavailable, default, "", errno);
    }

    [LoggerMessage(2, LogLevel.Warning, "Looking up {Path} failed for now ({Error}); requests get 503 (or 500 for an I/O error) until lookups succeed again.", EventName = "DiskUnavailable")]
    private static partial void LogDiskUnavailable(ILogger logger, string path, string error);

    [LoggerMessage(3, LogLevel.Information, "Lookups succeed again.", EventName = "DiskRecovered")]
    private static partial void LogDiskRecovered(ILogger logger);

    [LoggerMessage(14, LogLevel.Error, "{Missing} of the {Count} bytes of a file region for {Path} did not reach the epoll transport (something on the way buffered them); the response was aborted.", EventName = "RegionLost")]
    private static partial void LogRegionLost(ILogger logger, PathString path, long missing, long count);

    [LoggerMessage(1, LogLevel.Warning, "Reading {Path} failed after its headers were sent ({Error}); the response was aborted.", EventName = "ReadFailed")]
    private static partial void LogReadFailed(ILogger logger, PathString path, string error);
}
