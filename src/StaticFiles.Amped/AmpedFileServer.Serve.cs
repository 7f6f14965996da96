using System.Buffers;
using EpollTransport.Posix;
using EpollTransport;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Win32.SafeHandles;
using StaticFiles.Amped.Diagnostics;
using StaticFiles.Amped.Interop;
using Microsoft.AspNetCore.StaticFiles;
using Microsoft.Net.Http.Headers;
using StaticFiles.Amped.Caching;
using StaticFiles.Amped.Http;

namespace StaticFiles.Amped;

/// <summary>The response for a resolved path: validators, conditions, ranges, and the bytes, from the cache or the fd.</summary>
internal sealed partial class AmpedFileServer
{
    /// <summary>The most one read asks for: large enough to amortize a helper round trip, small enough to stream.</summary>
    private const int ChunkSize = 64 * 1024;

    /// <summary>The smallest body (or range) sent as a file region; smaller ones are copied, from the content cache if cached.</summary>
    private const long MinRegionSize = 16 * 1024;

    /// <summary>How much of a file one read-ahead check (and one region) covers.</summary>
    private const long RegionChunk = 4 * 1024 * 1024;

    /// <summary>The first read of a streamed body, made before the response starts (see <see cref="StreamAsync"/>).</summary>
    private const int FirstChunkSize = 16 * 1024;

    /// <summary>Serves <paramref name="entry"/>, or the precompressed sibling the request's Accept-Encoding prefers.</summary>
    private Task ServeAsync(HttpContext context, CachedPath entry)
    {
        if (!entry.HasSiblings)
        {
            return ServeFileAsync(context, entry, entry.File, coding: null);
        }
        // When a sibling exists the response varies by Accept-Encoding whichever is chosen.
        context.Response.Headers.Append(HeaderNames.Vary, HeaderNames.AcceptEncoding);
        return ContentCodingSelector.Select(context.Request.Headers.AcceptEncoding, entry.Brotli is not null, entry.Gzip is not null) switch
        {
            ContentCodingSelector.Brotli => ServeFileAsync(context, entry, entry.Brotli!, ContentCodingSelector.Brotli),
            ContentCodingSelector.Gzip => ServeFileAsync(context, entry, entry.Gzip!, ContentCodingSelector.Gzip),
            _ => ServeFileAsync(context, entry, entry.File, coding: null),
        };
    }

    /// <summary><paramref name="coding"/>: the content coding of a precompressed sibling being served, else null.</summary>
    private async Task ServeFileAsync(HttpContext context, CachedPath entry, CachedFile file, string? coding)
    {
        var request = context.Request;
        var response = context.Response;
        var length = file.Length;
        var validators = file.Validators;
        var contentType = entry.ContentType;

        var headers = response.Headers;
        headers.ETag = file.ETag;
        headers.LastModified = file.LastModified;
        headers.AcceptRanges = "bytes";
        if (coding is not null)
        {
            headers.ContentEncoding = coding;
        }
        if (_options.CacheControl is { } cacheControl)
        {
            headers.CacheControl = cacheControl;
        }
        // As UseStaticFiles: the application's hook sees the responses that carry the file (200, 206) or confirm it
        // (304), not the errors (412, 416); it runs once status and headers are final and before any byte of the
        // body, so that what it sets (a Content-Type with a charset, say) is what goes out.
        void PrepareResponse() => _options.OnPrepareResponse?.Invoke(new StaticFileResponseContext(context,
            new AmpedFileInfo(file.PhysicalPath, length, validators.LastModified)));

        var hasConditions = request.Headers.IfMatch.Count > 0 || request.Headers.IfNoneMatch.Count > 0
            || request.Headers.IfModifiedSince.Count > 0 || request.Headers.IfUnmodifiedSince.Count > 0;
        var requestHeaders = hasConditions || request.Headers.Range.Count > 0 ? request.GetTypedHeaders() : null;
        if (hasConditions)
        {
            switch (Preconditions.Evaluate(requestHeaders!, request.Method, validators))
            {
                case PreconditionResult.NotModified:
                    response.StatusCode = StatusCodes.Status304NotModified;
                    PrepareResponse();
                    return;
                case PreconditionResult.PreconditionFailed:
                    response.StatusCode = StatusCodes.Status412PreconditionFailed;
                    return;
            }
        }

        var plan = requestHeaders is null
            ? RangePlan.Full
            : RangeEvaluator.Evaluate(requestHeaders, request.Method, validators, DateTimeOffset.UtcNow, _options.MaxRanges);
        switch (plan.Kind)
        {
            case RangePlanKind.Unsatisfiable:
                response.StatusCode = StatusCodes.Status416RangeNotSatisfiable;
                headers.ContentRange = ContentRange.Unsatisfied(length);
                return;
            case RangePlanKind.Single:
                var range = plan.Ranges[0];
                response.StatusCode = StatusCodes.Status206PartialContent;
                headers.ContentRange = ContentRange.Format(range, length);
                response.ContentType = contentType;
                response.ContentLength = range.Length;
                PrepareResponse();
                await SendAsync(context, entry, file, range.Start, range.Length);
                return;
            case RangePlanKind.Multipart:
                var layout = new MultipartByteRanges(plan.Ranges, contentType, length, MultipartByteRanges.NewBoundary());
                response.StatusCode = StatusCodes.Status206PartialContent;
                response.ContentType = layout.ContentType;
                response.ContentLength = layout.ContentLength;
                PrepareResponse();
                foreach (var part in layout.Parts)
                {
                    await response.BodyWriter.WriteAsync(part.Header, context.RequestAborted);
                    if (!await SendAsync(context, entry, file, part.Range.Start, part.Range.Length))
                    {
                        return;
                    }
                }
                await response.BodyWriter.WriteAsync(layout.Closing, context.RequestAborted);
                return;
            default:
                response.ContentType = contentType;
                response.ContentLength = length;
                PrepareResponse();
                if (!HttpMethods.IsHead(request.Method))
                {
                    await SendAsync(context, entry, file, 0, length);
                }
                return;
        }
    }

    /// <summary>
    /// Sends <paramref name="count"/> bytes from <paramref name="offset"/>: from the cached content when the file's
    /// bytes are (or can now be) in the cache, else streamed from its fd. False when the response ended early.
    /// </summary>
    private async ValueTask<bool> SendAsync(HttpContext context, CachedPath entry, CachedFile file, long offset, long count)
    {
        // Zero copy first, even for a file whose bytes are cached in memory: from this size on, sendfile from the page
        // cache costs the server less than copying the bytes into the response and again into the socket.
        if (count >= MinRegionSize && await SendFileAsync(context, file.Fd, offset, count) is { } sent)
        {
            return sent;
        }
        var content = file.Content;
        if (content is not null)
        {
            _metrics.ContentHit();
        }
        else if (_files is not null && _files.WantsContent(entry, file))
        {
            content = await LoadContentAsync(context, entry, file);
        }
        if (content is null)
        {
            return await StreamAsync(context, file.Fd, offset, count);
        }
        var flushed = await context.Response.BodyWriter.WriteAsync(content.AsMemory((int)offset, (int)count), context.RequestAborted);
        return !(flushed.IsCanceled || flushed.IsCompleted);
    }

    /// <summary>
    /// Reads a small file whole into the content cache, if this request is the one to do it and the budget has room;
    /// null otherwise (the caller streams from the fd as usual).
    /// </summary>
    private async ValueTask<byte[]?> LoadContentAsync(HttpContext context, CachedPath entry, CachedFile file)
    {
        if (!file.TryBeginLoad())
        {
            return null;
        }
        if (!_files!.TryCharge(entry, file.Length))
        {
            file.EndLoad(null);
            return null;
        }
        var content = new byte[file.Length];
        var read = 0;
        try
        {
            while (read < content.Length)
            {
                var result = await _disk.ReadAsync(file.Fd, content.AsMemory(read), read, context.RequestAborted);
                if (!result.IsSuccess || result.Value == 0)
                {
                    break;
                }
                read += result.IntValue;
            }
        }
        finally
        {
            if (read != content.Length)
            {
                // Failed, cancelled, or the file shrank (a change the watcher is about to report): not cached.
                _files.Refund(entry, file.Length);
                file.EndLoad(null);
            }
        }
        if (read != content.Length)
        {
            return null;
        }
        file.EndLoad(content);
        return content;
    }

    /// <summary>
    /// Zero copy on the epoll transport: hands <paramref name="count"/> bytes of the file from <paramref name="offset"/>
    /// to the transport as file regions (<see cref="IEpollFileRegionFeature"/>), which it sends with sendfile. Flash's
    /// rule holds: before each region a chunk is found in the page cache and read on the loop (cachestat and
    /// RWF_NOWAIT probes) or a helper has read it in, so the loop's sendfile does not wait for the disk; the region says
    /// so (pagesReady), and the transport does not check it again. Null when this response cannot take a region (another
    /// transport, HTTP/2, a replaced body, TLS): the caller copies. False when the response ended early.
    /// </summary>
    private async ValueTask<bool?> SendFileAsync(HttpContext context, int fd, long offset, long count)
    {
        if (count == 0 || context.Features.Get<IEpollFileRegionFeature>() is not { } region)
        {
            return null;
        }
        var request = context.Request;
        if (!HttpProtocol.IsHttp11(request.Protocol) && !HttpProtocol.IsHttp10(request.Protocol))
        {
            _metrics.SendFileFellBack(RegionFallback.Protocol);
            return null;
        }
        // Kestrel's own response is both features. Response compression or output caching replaces the body one with
        // a writer of its own, whose bytes then differ from the file's; the epoll transport's SendFileAsync wrapper
        // keeps Kestrel's writer.
        if (context.Features.Get<IHttpResponseFeature>() is not IHttpResponseBodyFeature server
            || !ReferenceEquals(context.Features.Get<IHttpResponseBodyFeature>()?.Writer, server.Writer))
        {
            _metrics.SendFileFellBack(RegionFallback.BodyReplaced);
            return null;
        }
        var response = context.Response;
        var aborted = context.RequestAborted;
        var first = Math.Min(count, RegionChunk);
        // As StreamAsync's first read: before the response starts, a refusal or failure can still be a status.
        var ready = await _disk.ReadAheadAsync(fd, offset, first, aborted);
        if (!ready.IsSuccess && !response.HasStarted)
        {
            AnswerUnavailable(context, request.Path.Value ?? "", ready.Errno);
            return false;
        }
        var duplicate = FileInterop.Duplicate(fd);
        if (!duplicate.IsSuccess)
        {
            _metrics.SendFileFellBack(RegionFallback.DupFailed);
            return null;
        }
        // The transport's own fd for the file: the cache may close its fd before the last region is sent.
        using var handle = new SafeFileHandle((nint)duplicate.Value, ownsHandle: true);
        // The head first: while a region is armed every byte advanced is taken for the file's.
        if (!response.HasStarted)
        {
            await response.StartAsync(aborted);
        }
        else
        {
            await response.BodyWriter.FlushAsync(aborted);
        }
        var writer = response.BodyWriter;
        var sent = 0L;
        while (sent < count)
        {
            var chunk = Math.Min(count - sent, RegionChunk);
            if (sent > 0)
            {
                ready = await _disk.ReadAheadAsync(fd, offset + sent, chunk, aborted);
            }
            if (!ready.IsSuccess)
            {
                LogReadFailed(_logger, request.Path, ready.ToString());
                context.Abort();
                return false;
            }
            // Found read on the loop, or read in by a helper just now: the transport need not check it again.
            if (!region.TryWriteRegion(writer, handle, offset + sent, chunk, pagesReady: true, out var missing))
            {
                if (sent > 0)
                {
                    // Refused halfway (the connection closed): nothing more can be said.
                    context.Abort();
                    return false;
                }
                _metrics.SendFileFellBack(RegionFallback.Refused);
                return null;
            }
            if (missing != 0)
            {
                // Some of the advanced bytes stopped short of the transport (buffered on the way), and they are
                // scratch bytes: never let them out.
                LogRegionLost(_logger, request.Path, missing, chunk);
                context.Abort();
                return false;
            }
            _metrics.SentFile(chunk);
            sent += chunk;
            var flushed = await writer.FlushAsync(aborted);
            if (flushed.IsCanceled || flushed.IsCompleted)
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>Streams <paramref name="count"/> bytes from <paramref name="offset"/>; false when the response ended early.</summary>
    private async Task<bool> StreamAsync(HttpContext context, int fd, long offset, long count)
    {
        var writer = context.Response.BodyWriter;
        var aborted = context.RequestAborted;
        while (count > 0)
        {
            // Until a read has succeeded the response has not started, and a refused or failed read can still be
            // answered with a status instead of a reset; asking the writer for memory would start it. So the first
            // read goes into a buffer of our own, kept small since its bytes are copied once more.
            var started = context.Response.HasStarted;
            var want = (int)Math.Min(count, started ? ChunkSize : FirstChunkSize);
            var own = started ? null : ArrayPool<byte>.Shared.Rent(want);
            try
            {
                var memory = own is null ? writer.GetMemory(want) : own.AsMemory();
                var read = await _disk.ReadAsync(fd, memory[..Math.Min(memory.Length, want)], offset, aborted);
                if (!read.IsSuccess || read.Value == 0)
                {
                    if (!started)
                    {
                        AnswerUnavailable(context, context.Request.Path.Value ?? "", read.IsSuccess ? Errnos.EIO : read.Errno);
                        return false;
                    }
                    // The file shrank or failed under us after Content-Length went out: the only honest end is an abort.
                    LogReadFailed(_logger, context.Request.Path, read.ToString());
                    context.Abort();
                    return false;
                }
                _metrics.Copied(read.Value);
                if (own is null)
                {
                    writer.Advance(read.IntValue);
                }
                else
                {
                    writer.Write(own.AsSpan(0, read.IntValue));
                }
                offset += read.Value;
                count -= read.Value;
            }
            finally
            {
                if (own is not null)
                {
                    ArrayPool<byte>.Shared.Return(own);
                }
            }
            var flushed = await writer.FlushAsync(aborted);
            if (flushed.IsCanceled || flushed.IsCompleted)
            {
                return false;
            }
        }
        return true;
    }
}
