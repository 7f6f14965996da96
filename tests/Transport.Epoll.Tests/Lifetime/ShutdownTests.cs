using System.Net;
using System.Net.Sockets;
using System.Text;
using EpollTransport.Tests.Reactor;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace EpollTransport.Tests.Lifetime;

public class ShutdownTests
{

    [Fact]
    public async Task DisposingAStartedAppWithoutStoppingItDoesNotThrow()
    {
        // `await using var app` without StopAsync: Kestrel's Dispose stops with an already-cancelled token, which
        // Sockets' unbind never observes.
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseEpollTransport(o => o.ReactorCount = 1);
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        app.MapGet("/", () => "ok");
        await app.StartAsync().WaitAsync(LongWaitLimit);
        using (var client = new HttpClient())
        {
            Assert.Equal("ok", await client.GetStringAsync(app.Urls.First()).WaitAsync(LongWaitLimit));
        }

        await app.DisposeAsync().AsTask().WaitAsync(LongWaitLimit);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task StopCompletesWhileAClientNeverReadsAndLeavesNoReactorThread(bool inline)
    {
        int reactorsBefore = ReactorThreads();
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseEpollTransport(o =>
        {
            o.ReactorCount = 2;
            o.UnsafePreferInlineScheduling = inline;
        });
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(1));
        var app = builder.Build();
        var writing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var chunk = new byte[64 * 1024];
        app.MapGet("/endless", async context =>
        {
            writing.TrySetResult();
            // Bounded, but far more than the socket buffers: the client never reads, so this blocks on backpressure.
            for (int i = 0; i < 4096 && !context.RequestAborted.IsCancellationRequested; i++)
            {
                await context.Response.Body.WriteAsync(chunk, context.RequestAborted);
            }
        });
        await app.StartAsync();
        var address = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());

        using var stuck = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 16 * 1024 };
        await stuck.ConnectAsync(new IPEndPoint(IPAddress.Loopback, address.Port));
        await stuck.SendAsync(Encoding.ASCII.GetBytes("GET /endless HTTP/1.1\r\nHost: x\r\n\r\n"));
        await writing.Task.WaitAsync(LongWaitLimit);

        // Kestrel aborts the connection after the shutdown timeout; the transport must close it and let go.
        await app.StopAsync().WaitAsync(LongWaitLimit);
        await app.DisposeAsync().AsTask().WaitAsync(LongWaitLimit);

        // The loop threads have finished when disposal returns; the kernel reaps them a moment later and
        // nothing signals that, hence the bounded poll.
        Assert.True(SpinWait.SpinUntil(() => ReactorThreads() <= reactorsBefore, LongWaitLimit), "A reactor thread outlived the host.");
        await AssertClosedAsync(stuck);
    }

    private static async Task AssertClosedAsync(Socket socket)
    {
        var buffer = new byte[64 * 1024];
        for (int i = 0; i < 100_000; i++)
        {
            try
            {
                if (await socket.ReceiveAsync(buffer, SocketFlags.None).WaitAsync(LongWaitLimit) == 0)
                {
                    return;
                }
            }
            catch (SocketException ex) when (ex.SocketErrorCode == SocketError.ConnectionReset)
            {
                return;
            }
        }
        Assert.Fail("The connection was still open after the host stopped.");
    }

    private static int ReactorThreads() => ReactorWakeupTests.ThreadNames().Count(n => n.StartsWith("epoll-reactor-", StringComparison.Ordinal));
}
