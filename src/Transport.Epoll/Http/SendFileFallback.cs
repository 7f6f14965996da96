namespace EpollTransport.Http;

/// <summary>Why a <c>SendFileAsync</c> on the epoll transport copied the file instead of sending it by sendfile.</summary>
internal enum SendFileFallback
{
    /// <summary>HTTP/2 or HTTP/3: frames of other streams share the connection's output.</summary>
    Protocol,

    /// <summary>TLS: the bytes are encrypted on their way to the socket.</summary>
    Tls,

    /// <summary>A HEAD request: Kestrel sends no body.</summary>
    Head,

    /// <summary>A status that has no body (1xx, 204, 304).</summary>
    NoBody,

    /// <summary>No Content-Length (or a Transfer-Encoding): Kestrel frames the body in chunks.</summary>
    Chunked,

    /// <summary>Fewer bytes than <see cref="ZeroCopyResponseBody.MinRegionSize"/>: a copy next to the head costs less.</summary>
    Small,

    /// <summary>The connection refused the region (its transport replaced by a connection middleware, or closed).</summary>
    Refused,
}
