using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace EpollTransport.Tests;

public class SmokeTests
{
    [Fact]
    public async Task KestrelPicksTheEpollTransportAndRunsInlineOnTheReactor()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseEpollTransport(o =>
        {
            o.ReactorCount = 2;
            o.UnsafePreferInlineScheduling = true;
        });
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        await using var app = builder.Build();
        app.MapGet("/thread", () => Thread.CurrentThread.Name ?? "");
        await app.StartAsync();

        // Kestrel asks the last registered factory first.
        Assert.IsType<EpollTransportFactory>(app.Services.GetServices<IConnectionListenerFactory>().Last());
        using var client = new HttpClient();
        var threads = new List<string>();
        for (int i = 0; i < 10; i++)
        {
            threads.Add(await client.GetStringAsync(app.Urls.First() + "/thread"));
        }
        // Kestrel starts each connection on the thread pool; from the first await on input on, it runs where
        // the transport completes the read: on the reactor.
        Assert.All(threads.Skip(1), name => Assert.Matches("^epoll-reactor-[01]$", name));
        await app.StopAsync();
    }
}
