namespace StaticFiles.Amped.Diagnostics;

/// <summary>Why a body streamed from an fd was copied on the epoll transport instead of sent as a file region.</summary>
internal enum RegionFallback
{
    /// <summary>HTTP/2 or HTTP/3: the transport carries frames, not the body's bytes as they are.</summary>
    Protocol,

    /// <summary>Something replaced the response body feature (response compression, output caching): the bytes change on the way.</summary>
    BodyReplaced,

    /// <summary>The transport refused the region: TLS (or another wrapped connection), write-through sends, a closed connection.</summary>
    Refused,

    /// <summary>The fd could not be duplicated for the transport to own (fd limit reached).</summary>
    DupFailed,
}
