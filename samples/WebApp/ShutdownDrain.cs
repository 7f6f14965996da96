using EpollTransport;

namespace WebApp;

/// <summary>
/// Lame-duck shutdown for HTTP/1.x behind a proxy (<c>--drain SECONDS</c>). Kestrel's own graceful shutdown closes idle
/// keep-alive connections at once, and a proxy that picks one of them for a request at that moment finds it closed
/// without an answer: nginx passes a GET to another instance, but a POST that it has sent gets a 502. While draining,
/// every HTTP/1.x response carries <c>Connection: close</c>, so each of the proxy's connections to this process ends
/// after its next response, closed by the server once the proxy knows not to reuse it. On the epoll transport it first
/// stops accepting (<see cref="EpollTransportFactory.StopAcceptingAsync"/>): the proxy's new connections then wait in
/// the backlog of the inherited socket for the next process. When the period ends Kestrel stops as usual, with few
/// connections of the proxy's left to close.
/// </summary>
/// <remarks>
/// A lifecycle hosted service: the host runs every <see cref="StoppingAsync"/> before any hosted service's
/// <c>StopAsync</c>, the web host's included, so Kestrel keeps serving while this drains (and, on Sockets, accepting).
/// </remarks>
internal sealed class ShutdownDrain(TimeSpan period, EpollTransportFactory? transport, ILogger<ShutdownDrain> logger) : IHostedLifecycleService
{
    private volatile bool _draining;

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        _draining = true;
        SampleLog.Draining(logger, period.TotalSeconds);
        try
        {
            if (transport is not null)
            {
                // First stop accepting: new connections wait in the backlog of the inherited socket for the next
                // process. Accepting on during the drain, this process took the proxy's new connections, and the
                // rolling scenario then saw nginx find some of them closed unanswered when Kestrel stopped.
                await transport.StopAcceptingAsync(cancellationToken);
            }
            await Task.Delay(period, cancellationToken);
        }
        catch (OperationCanceledException)
        {
            // The host's shutdown timeout ran out first: stop now.
        }
    }

    /// <summary>First in the pipeline: while draining, asks the client (the proxy) to close after this response.</summary>
    public Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        if (_draining && (HttpProtocol.IsHttp11(context.Request.Protocol) || HttpProtocol.IsHttp10(context.Request.Protocol)))
        {
            context.Response.Headers.Connection = "close";
        }
        return next(context);
    }
}
