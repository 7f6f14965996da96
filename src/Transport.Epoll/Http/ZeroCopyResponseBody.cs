using EpollTransport.Connections;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;

namespace EpollTransport.Http;

/// <summary>
/// Kestrel's response body on the epoll transport, with a <see cref="SendFileAsync"/> that sends the file by
/// <c>sendfile(2)</c> through the connection's file regions (<see cref="IEpollFileRegionFeature"/>) instead of copying
/// it: what <c>Results.File</c>, <c>UseStaticFiles</c> and MVC's <c>PhysicalFileResult</c> call. Everything else is
/// Kestrel's own. Where the bytes would not reach the socket unchanged it copies, as Kestrel does, and counts why
/// (<see cref="SendFileFallback"/>).
/// </summary>
/// <remarks>
/// An HTTP/1.x connection keeps one and rebinds it to each request (<see cref="Bind"/>): its requests come one at a
/// time. An HTTP/2 stream gets its own.
/// </remarks>
internal sealed class ZeroCopyResponseBody(SendFileMetrics metrics, ILogger logger) : IHttpResponseBodyFeature
{
    /// <summary>Smaller bodies are copied: next to the head, one <c>sendmsg</c> costs less than a second call.</summary>
    internal const long MinRegionSize = 16 * 1024;

    /// <summary>Bytes armed and advanced per flush; the flush waits while more than MaxWriteBufferSize of them is unsent.</summary>
    internal const long RegionChunk = 4 * 1024 * 1024;

    private IHttpResponseBodyFeature _inner = null!;
    private HttpContext _context = null!;
    private IEpollFileRegionFeature _region = null!;

    /// <summary>Serves <paramref name="context"/>'s response, whose body feature is Kestrel's <paramref name="inner"/>.</summary>
    public ZeroCopyResponseBody Bind(HttpContext context, IHttpResponseBodyFeature inner, IEpollFileRegionFeature region)
    {
        _context = context;
        _inner = inner;
        _region = region;
        return this;
    }

    public Stream Stream => _inner.Stream;

    public System.IO.Pipelines.PipeWriter Writer => _inner.Writer;

    public void DisableBuffering() => _inner.DisableBuffering();

    public Task StartAsync(CancellationToken cancellationToken = default) => _inner.StartAsync(cancellationToken);

    public Task CompleteAsync() => _inner.CompleteAsync();

    public Task SendFileAsync(string path, long offset, long? count, CancellationToken cancellationToken = default)
    {
        if (Refusal() is { } reason)
        {
            metrics.FellBack(reason);
            if (reason is not (SendFileFallback.Head or SendFileFallback.NoBody))
            {
                // HEAD and bodiless statuses copy nothing: Kestrel drops (or refuses) their body bytes.
                metrics.Copied(count ?? 0);
            }
            return _inner.SendFileAsync(path, offset, count, cancellationToken);
        }
        return SendAsync(path, offset, count, cancellationToken);
    }

    /// <summary>Why this response cannot take a region, as far as the request and its headers tell; null: it can.</summary>
    private SendFileFallback? Refusal()
    {
        var request = _context.Request;
        var response = _context.Response;
        if (!HttpProtocol.IsHttp11(request.Protocol) && !HttpProtocol.IsHttp10(request.Protocol))
        {
            return SendFileFallback.Protocol;
        }
        if (request.IsHttps)
        {
            return SendFileFallback.Tls;
        }
        if (HttpMethods.IsHead(request.Method))
        {
            return SendFileFallback.Head;
        }
        if (response.StatusCode is < 200 or 204 or 304)
        {
            return SendFileFallback.NoBody;
        }
        if (response.ContentLength is null || response.Headers.TransferEncoding.Count != 0)
        {
            return SendFileFallback.Chunked;
        }
        return null;
    }

    private async Task SendAsync(string path, long offset, long? count, CancellationToken cancellationToken)
    {
        // As Kestrel's own SendFileAsync: the same checks and exceptions, and a file others may write or delete.
        using var file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        var length = RandomAccess.GetLength(file);
        if (offset < 0 || offset > length)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), offset, string.Empty);
        }
        if (count is { } given && (given < 0 || given > length - offset))
        {
            throw new ArgumentOutOfRangeException(nameof(count), count, string.Empty);
        }
        cancellationToken.ThrowIfCancellationRequested();
        var total = count ?? length - offset;
        if (total == 0)
        {
            return;
        }
        if (total < MinRegionSize)
        {
            metrics.FellBack(SendFileFallback.Small);
            await CopyAsync(file, offset, total, cancellationToken);
            return;
        }

        // The head first: while a region is armed every byte advanced is taken for the file's.
        var writer = _inner.Writer;
        if (!_context.Response.HasStarted)
        {
            await _inner.StartAsync(cancellationToken);
        }
        else
        {
            await writer.FlushAsync(cancellationToken);
        }
        var sent = 0L;
        while (sent < total)
        {
            var chunk = Math.Min(total - sent, RegionChunk);
            if (!_region.TryWriteRegion(writer, file, offset + sent, chunk, pagesReady: false, out var missing))
            {
                if (sent == 0)
                {
                    metrics.FellBack(SendFileFallback.Refused);
                    await CopyAsync(file, offset, total, cancellationToken);
                    return;
                }
                // Refused halfway (the connection closed): nothing more can be said.
                _context.Abort();
                return;
            }
            if (missing != 0)
            {
                // Some advanced bytes stopped short of the transport (buffered on the way), and they are scratch bytes:
                // never let them out.
                EpollTransportLog.RegionLost(logger, _context.Request.Path.Value ?? "", missing, chunk);
                _context.Abort();
                return;
            }
            sent += chunk;
            if (sent == total)
            {
                metrics.Sent();
            }
            var flushed = await writer.FlushAsync(cancellationToken);
            if (flushed.IsCanceled || flushed.IsCompleted)
            {
                return;
            }
        }
    }

    /// <summary>The copy path for a file already open: read into the body writer's memory and flush.</summary>
    private async Task CopyAsync(SafeFileHandle file, long offset, long count, CancellationToken cancellationToken)
    {
        var writer = _inner.Writer;
        while (count > 0)
        {
            var memory = writer.GetMemory((int)Math.Min(count, 64 * 1024));
            var read = await RandomAccess.ReadAsync(file, memory[..(int)Math.Min(count, memory.Length)], offset, cancellationToken);
            if (read == 0)
            {
                // The file shrank after its length was read: Content-Length can no longer be kept.
                throw new EndOfStreamException($"The file ended {count} bytes before the range sent.");
            }
            writer.Advance(read);
            metrics.Copied(read);
            offset += read;
            count -= read;
            var flushed = await writer.FlushAsync(cancellationToken);
            if (flushed.IsCanceled || flushed.IsCompleted)
            {
                return;
            }
        }
    }
}
