using Microsoft.AspNetCore.Http.Features;

namespace WebApp;

/// <summary>The gRPC calls the sample answered, by outcome: the body of <c>GET /grpc/calls</c>.</summary>
/// <param name="Ok">Calls that ended with grpc-status 0.</param>
/// <param name="Failed">Calls that ended with another grpc-status, or with none (an HTTP error).</param>
/// <param name="Abandoned">Calls not OK whose client was gone before the answer ended (a reset stream, a closed connection).</param>
internal sealed record GrpcCallCounts(long Ok, long Failed, long Abandoned);

/// <summary>
/// Counts every gRPC call (a request with a gRPC content type) by the grpc-status it ended with. gRPC sends its status
/// in the trailers, which a load generator such as h2load never reads, and a failed call is usually HTTP 200; these
/// counts are how a benchmark learns that every call it completed succeeded. A call is counted when the app is done
/// with it and before Kestrel sends its end: the trailers, or, for a call that fails before any message, the headers.
/// </summary>
internal sealed class GrpcCallCounter
{
    private long _ok;
    private long _failed;
    private long _abandoned;

    public GrpcCallCounts Counts => new(Interlocked.Read(ref _ok), Interlocked.Read(ref _failed), Interlocked.Read(ref _abandoned));

    /// <summary>The middleware: a request that is no gRPC call passes through untouched.</summary>
    public Task CountAsync(HttpContext context, RequestDelegate next) =>
        context.Request.ContentType is { } type && type.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase)
            ? CountCallAsync(context, next)
            : next(context);

    private async Task CountCallAsync(HttpContext context, RequestDelegate next)
    {
        try
        {
            await next(context);
        }
        finally
        {
            if (GrpcStatus(context) == "0")
            {
                Interlocked.Increment(ref _ok);
            }
            else if (context.RequestAborted.IsCancellationRequested)
            {
                // Nobody reads this answer: the client reset the stream or closed the connection, as a load generator
                // does with the calls still in flight when its time is up.
                Interlocked.Increment(ref _abandoned);
            }
            else
            {
                Interlocked.Increment(ref _failed);
            }
        }
    }

    /// <summary>
    /// Where gRPC put the status: in the trailers once a message was sent, in the headers of a "trailers-only" answer
    /// otherwise.
    /// </summary>
    private static string? GrpcStatus(HttpContext context)
    {
        if (context.Features.Get<IHttpResponseTrailersFeature>()?.Trailers is { } trailers
            && trailers.TryGetValue("grpc-status", out var status))
        {
            return status.ToString();
        }
        return context.Response.Headers.TryGetValue("grpc-status", out status) ? status.ToString() : null;
    }
}
