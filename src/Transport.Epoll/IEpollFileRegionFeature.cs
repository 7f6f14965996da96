using Microsoft.Win32.SafeHandles;

namespace EpollTransport;

/// <summary>
/// Zero-copy file bodies on the epoll transport: a connection feature that lets bytes written to the connection's
/// output come from a file by <c>sendfile(2)</c> instead of from memory. Reached from a request through
/// <c>HttpContext.Features</c> (Kestrel's request features fall back to the connection's).
/// </summary>
/// <remarks>
/// <para>
/// While a region is armed, the transport's output hands out scratch memory from <c>GetMemory</c>/<c>GetSpan</c>
/// whose contents are never sent, and each <c>Advance(k)</c> records "the next k bytes of the file" at that point of
/// the stream. So the caller arms, then advances the response body writer by the region's length (writing nothing),
/// then disarms and flushes: Kestrel counts every byte (Content-Length, keep-alive and pipelining stay intact), and the
/// transport sends headers, file and whatever follows in stream order.
/// <see cref="EpollFileRegionExtensions.TryWriteRegion"/> makes the arm, advance and disarm steps in one call.
/// </para>
/// <para>
/// Only where the body writer's <c>Advance</c> reaches the transport unchanged: HTTP/1.x without TLS, with a
/// Content-Length (not chunked), after the headers are sent (<c>StartAsync</c>), with every flush awaited, and with
/// no replaced response body feature (compression, output caching). <see cref="TryArm"/> refuses what the transport
/// can see (TLS or any other replaced <c>ConnectionContext.Transport</c>, HTTP/2, write-through sends, a closed
/// connection); the rest is the caller's to check. A region whose bytes did not all reach the transport is
/// reported by <see cref="Disarm"/>: the caller must then abort the connection, since the peer would get scratch
/// bytes or too few.
/// </para>
/// </remarks>
public interface IEpollFileRegionFeature
{
    /// <summary>
    /// Arms a region of <paramref name="length"/> bytes of <paramref name="file"/> from <paramref name="offset"/>. The
    /// transport takes its own reference on the handle for as long as it has region bytes to send.
    /// </summary>
    /// <param name="file">The file; the transport adds its own reference.</param>
    /// <param name="offset">The file offset of the region's first byte.</param>
    /// <param name="length">The region's length in bytes.</param>
    /// <param name="pagesReady">
    /// True when the caller has just found the whole range in the page cache and read (or has read it in itself, off
    /// the loop), so the transport sends it without checking again. Otherwise (the default) the transport checks
    /// before each chunk, and has a chunk that is not read in read ahead off its reactor first.
    /// </param>
    /// <returns>False when this connection cannot send a region (see the remarks): write the bytes instead.</returns>
    bool TryArm(SafeFileHandle file, long offset, long length, bool pagesReady = false);

    /// <summary>
    /// Ends the armed region. Returns how many of its bytes did not reach the transport's output (0: all did). The
    /// region also ends by itself once all of its bytes are advanced.
    /// </summary>
    long Disarm();
}
