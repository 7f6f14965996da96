using System.Buffers;
using EpollTransport;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.StaticFiles;
using Microsoft.Extensions.Logging;
using Microsoft.Net.Http.Headers;
using StaticFiles.Amped.Caching;
using StaticFiles.Amped.Disk;
using StaticFiles.Amped.Http;
using StaticFiles.Amped.Interop;
using StaticFiles.Amped.Paths;

namespace StaticFiles.Amped;

/// <summary>
/// The middleware's work for one request: find the file beneath the root, decide the response from its validators
/// (RFC 9110), and stream the bytes. Every call that may block runs on a helper (or, in <see cref="AmpedMode.Sped"/>,
/// right here); the request resumes on its loop: the epoll reactor that runs it inline, or the middleware's own.
/// </summary>
internal sealed partial class AmpedFileServer : IDisposable
{
    /// <summary>The most one read asks for: large enough to amortize a helper round trip, small enough to stream.</summary>
    private const int ChunkSize = 64 * 1024;

    private readonly AmpedStaticFileOptions _options;
    private readonly string _root;
    private readonly int _rootFd;
    private readonly HelperPool? _helpers;
    private readonly Lazy<EpollLoop> _ownLoop = new(() => EpollLoop.Start("amped-loop"));
    private readonly ILogger _logger;
    private readonly MissCache? _misses;
    private readonly IFileCalls _calls;
    private long _lookups;

    public AmpedFileServer(AmpedStaticFileOptions options, string root, ILogger logger, IFileCalls? calls = null)
    {
        _options = options;
        _calls = calls ?? LinuxFileCalls.Instance;
        _root = Path.GetFullPath(root);
        _logger = logger;
        var opened = FileInterop.OpenDirectory(_root);
        if (!opened.IsSuccess)
        {
            throw new DirectoryNotFoundException($"The static files root '{_root}' cannot be opened: {opened}.");
        }
        _rootFd = opened.IntValue;
        if (options.PathCacheEntries > 0)
        {
            _misses = new MissCache(_root, options.PathCacheEntries);
        }
        if (options.Mode == AmpedMode.Amped)
        {
            _helpers = new HelperPool(options.MetadataHelperThreads, options.DataHelperThreads, options.HelperQueueCapacity);
        }
    }

    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var request = context.Request;
        if (!(HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method))
            || !request.Path.StartsWithSegments(_options.RequestPath, out var subpath)
            || !RequestPaths.TryGetRelative(subpath, _options.ServeDotFiles, out var relative, out var endsWithSlash))
        {
            await next(context);
            return;
        }

        // The key keeps the trailing slash: "/docs" (a redirect) and "/docs/" (the document) are different answers.
        var key = subpath.Value ?? "";
        if (_misses?.Contains(key) == true)
        {
            await next(context);
            return;
        }

        var generation = _misses?.Invalidations ?? 0;
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

        try
        {
            if (!TryGetContentType(name, out var contentType))
            {
                _misses?.Add(key, generation);
                await next(context);
                return;
            }
            if (await OpenPrecompressedAsync(context, loop, key, name, generation) is { } encoded)
            {
                try
                {
                    await ServeAsync(context, loop, encoded.File, encoded.Name, contentType, encoded.Coding);
                }
                finally
                {
                    _calls.Close(encoded.File.Fd);
                }
                return;
            }
            await ServeAsync(context, loop, opened, name, contentType, coding: null);
        }
        finally
        {
            // A read-only regular file: close(2) does not wait for the disk.
            _calls.Close(opened.Fd);
        }
    }

    /// <summary>Lookups made on disk (helper jobs, or direct calls in Sped mode); for tests.</summary>
    internal long Lookups => Interlocked.Read(ref _lookups);

    /// <summary>Completes the next time a change under the root empties the path cache; for tests.</summary>
    internal Task NextCacheInvalidation => _misses?.NextInvalidation ?? Task.CompletedTask;

    public void Dispose()
    {
        _misses?.Dispose();
        _helpers?.Dispose();
        if (_ownLoop.IsValueCreated)
        {
            _ownLoop.Value.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
        FileInterop.Close(_rootFd);
    }

    /// <summary><paramref name="coding"/>: the content coding of a precompressed sibling being served, else null.</summary>
    private async Task ServeAsync(HttpContext context, EpollLoop loop, OpenedFile file, string name, string contentType, string? coding)
    {
        var request = context.Request;
        var response = context.Response;
        var stat = file.Stat;
        var length = (long)stat.stx_size;
        var lastWrite = DateTimeOffset.FromUnixTimeSeconds(stat.stx_mtime.tv_sec);
        var validators = FileValidators.Create(length, lastWrite, stat.stx_mtime.tv_nsec, stat.stx_ino);
        var requestHeaders = request.GetTypedHeaders();

        var responseHeaders = response.GetTypedHeaders();
        responseHeaders.ETag = validators.ETag;
        responseHeaders.LastModified = validators.LastModified;
        response.Headers.AcceptRanges = "bytes";
        if (coding is not null)
        {
            response.Headers.ContentEncoding = coding;
        }
        if (_options.CacheControl is { } cacheControl)
        {
            response.Headers.CacheControl = cacheControl;
        }
        // As UseStaticFiles: the application's hook sees the responses that carry the file (200, 206) or confirm it
        // (304), not the errors (412, 416).
        void PrepareResponse() => _options.OnPrepareResponse?.Invoke(new StaticFileResponseContext(context,
            new AmpedFileInfo(Path.Combine(_root, name), length, validators.LastModified)));

        switch (Preconditions.Evaluate(requestHeaders, request.Method, validators))
        {
            case PreconditionResult.NotModified:
                PrepareResponse();
                response.StatusCode = StatusCodes.Status304NotModified;
                return;
            case PreconditionResult.PreconditionFailed:
                response.StatusCode = StatusCodes.Status412PreconditionFailed;
                return;
        }

        var plan = RangeEvaluator.Evaluate(requestHeaders, request.Method, validators, DateTimeOffset.UtcNow, _options.MaxRanges);
        var isHead = HttpMethods.IsHead(request.Method);
        if (plan.Kind == RangePlanKind.Unsatisfiable)
        {
            response.StatusCode = StatusCodes.Status416RangeNotSatisfiable;
            response.Headers.ContentRange = ContentRange.Unsatisfied(length);
            return;
        }
        PrepareResponse();
        switch (plan.Kind)
        {
            case RangePlanKind.Single:
                var range = plan.Ranges[0];
                response.StatusCode = StatusCodes.Status206PartialContent;
                response.Headers.ContentRange = ContentRange.Format(range, length);
                response.ContentType = contentType;
                response.ContentLength = range.Length;
                await SendAsync(context, loop, file.Fd, range.Start, range.Length);
                return;
            case RangePlanKind.Multipart:
                var layout = new MultipartByteRanges(plan.Ranges, contentType, length, MultipartByteRanges.NewBoundary());
                response.StatusCode = StatusCodes.Status206PartialContent;
                response.ContentType = layout.ContentType;
                response.ContentLength = layout.ContentLength;
                foreach (var part in layout.Parts)
                {
                    await response.BodyWriter.WriteAsync(part.Header, context.RequestAborted);
                    if (!await SendAsync(context, loop, file.Fd, part.Range.Start, part.Range.Length))
                    {
                        return;
                    }
                }
                await response.BodyWriter.WriteAsync(layout.Closing, context.RequestAborted);
                return;
            default:
                response.ContentType = contentType;
                response.ContentLength = length;
                if (!isHead)
                {
                    await SendAsync(context, loop, file.Fd, 0, length);
                }
                return;
        }
    }

    /// <summary>Streams <paramref name="count"/> bytes from <paramref name="offset"/>; false when the response ended early.</summary>
    private async Task<bool> SendAsync(HttpContext context, EpollLoop loop, int fd, long offset, long count)
    {
        var writer = context.Response.BodyWriter;
        var aborted = context.RequestAborted;
        while (count > 0)
        {
            var want = (int)Math.Min(count, ChunkSize);
            var memory = writer.GetMemory(want);
            memory = memory[..Math.Min(memory.Length, want)];
            var read = await ReadAsync(loop, fd, memory, offset, aborted);
            if (!read.IsSuccess || read.Value == 0)
            {
                // The file shrank or failed under us after Content-Length went out: the only honest end is an abort.
                LogReadFailed(_logger, context.Request.Path, read.ToString());
                context.Abort();
                return false;
            }
            writer.Advance(read.IntValue);
            offset += read.Value;
            count -= read.Value;
            var flushed = await writer.FlushAsync(aborted);
            if (flushed.IsCanceled || flushed.IsCompleted)
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>
    /// Page-cache data straight from the loop (<c>preadv2</c> with <c>RWF_NOWAIT</c> never waits for the disk); only a
    /// miss goes to a helper. A short read returns what was cached; the next call finds where the cache ends.
    /// </summary>
    private async ValueTask<FileResult> ReadAsync(EpollLoop loop, int fd, Memory<byte> memory, long offset, CancellationToken aborted)
    {
        if (_helpers is null)
        {
            // Sped: the loop itself waits for the disk.
            return ReadFileJob.Read(_calls, fd, memory.Span, offset);
        }
        var cached = _calls.ReadNoWait(fd, memory.Span, offset);
        if (cached.IsSuccess || !(cached.WouldBlock || cached.Errno == FileResult.EOPNOTSUPP))
        {
            return cached;
        }

        using var job = new ReadFileJob(_calls, fd, memory.Length, offset);
        if (!_helpers.TryPost(job, DiskQueue.Data, loop, aborted, out var completion))
        {
            return FileResult.FromErrno(FileResult.EAGAIN);
        }
        var read = await completion;
        if (read.IsSuccess)
        {
            // Back on the loop, which owns the response's memory again.
            job.Data(read.IntValue).CopyTo(memory.Span);
        }
        return read;
    }

    /// <summary>
    /// The <c>.br</c> or <c>.gz</c> sibling of <paramref name="name"/> that the request's Accept-Encoding prefers, or
    /// null for the file itself. When a sibling exists the response varies by Accept-Encoding whichever is chosen,
    /// so <c>Vary</c> is set either way. Siblings that do not exist are remembered by the path cache, so a site
    /// without them pays the probe once per path.
    /// </summary>
    private async ValueTask<(OpenedFile File, string Name, string Coding)?> OpenPrecompressedAsync(HttpContext context, EpollLoop loop,
        string key, string name, long generation)
    {
        if (!_options.ServePrecompressedFiles)
        {
            return null;
        }
        var aborted = context.RequestAborted;
        var brotli = await OpenSiblingAsync(loop, key + ".br", name + ".br", generation, aborted);
        var gzip = await OpenSiblingAsync(loop, key + ".gz", name + ".gz", generation, aborted);
        if (brotli is null && gzip is null)
        {
            return null;
        }
        context.Response.Headers.Append(HeaderNames.Vary, HeaderNames.AcceptEncoding);
        var chosen = ContentCodingSelector.Select(context.Request.Headers.AcceptEncoding, brotli is not null, gzip is not null);
        if (chosen != ContentCodingSelector.Brotli && brotli is { } unusedBrotli)
        {
            _calls.Close(unusedBrotli.Fd);
        }
        if (chosen != ContentCodingSelector.Gzip && gzip is { } unusedGzip)
        {
            _calls.Close(unusedGzip.Fd);
        }
        return chosen switch
        {
            ContentCodingSelector.Brotli => (brotli!.Value, name + ".br", chosen),
            ContentCodingSelector.Gzip => (gzip!.Value, name + ".gz", chosen),
            _ => null,
        };
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
        var job = new OpenFileJob(_calls, _rootFd, relative);
        if (_helpers is null)
        {
            return job.ExecuteHere();
        }
        if (!_helpers.TryPost(job, DiskQueue.Metadata, loop, aborted, out var completion))
        {
            return null;
        }
        return await completion;
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
