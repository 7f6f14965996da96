using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;

namespace StaticFiles.Amped.Tests.Loop;

/// <summary>Real Kestrel on one epoll reactor, on a free loopback port.</summary>
internal static class EpollHost
{
    public static readonly TimeSpan WaitLimit = TimeSpan.FromSeconds(30);

    public static async Task<WebApplication> StartAsync(bool inline, Action<WebApplication> configure)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseEpollTransport(o =>
        {
            o.ReactorCount = 1;
            o.UnsafePreferInlineScheduling = inline;
        });
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        configure(app);
        await app.StartAsync().WaitAsync(WaitLimit);
        return app;
    }
}
