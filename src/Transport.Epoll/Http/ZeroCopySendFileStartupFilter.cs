using EpollTransport.Connections;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace EpollTransport.Http;

/// <summary>
/// Puts <see cref="ZeroCopyResponseBody"/> in front of Kestrel's response body on every request that came through the
/// epoll transport (<see cref="EpollTransportOptions.ZeroCopySendFile"/>), first in the pipeline: a middleware that
/// replaces the body later (response compression, output caching) wraps it, and its bytes never reach it unchanged.
/// </summary>
internal sealed class ZeroCopySendFileStartupFilter(IOptions<EpollTransportOptions> options, SendFileMetrics metrics, ILoggerFactory loggerFactory) : IStartupFilter
{
    private readonly ILogger _logger = loggerFactory.CreateLogger("EpollTransport.SendFile");

    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next)
    {
        if (!options.Value.ZeroCopySendFile)
        {
            return next;
        }
        return app =>
        {
            app.Use(next => context =>
            {
                Wrap(context);
                return next(context);
            });
            next(app);
        };
    }

    private void Wrap(HttpContext context)
    {
        var features = context.Features;
        // On another transport (or TestHost) there is no region feature; a body already replaced is not Kestrel's.
        if (features.Get<IEpollFileRegionFeature>() is not { } region
            || features.Get<IHttpResponseBodyFeature>() is not { } body
            || !ReferenceEquals(body, features.Get<IHttpResponseFeature>()))
        {
            return;
        }
        var protocol = context.Request.Protocol;
        var wrapper = region is EpollConnection connection && (HttpProtocol.IsHttp11(protocol) || HttpProtocol.IsHttp10(protocol))
            ? connection.ResponseBody ??= new ZeroCopyResponseBody(metrics, _logger)
            : new ZeroCopyResponseBody(metrics, _logger);
        features.Set<IHttpResponseBodyFeature>(wrapper.Bind(context, body, region));
    }
}
