using System.Net;
using System.Net.Sockets;
using EpollTransport.Interop;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;

namespace EpollTransport.Tests.Http;

/// <summary>
/// HTTP through Kestrel on the end points besides TCP that the epoll transport binds: a Unix domain socket
/// (<c>ListenUnixSocket</c>) and a listening fd handed over (<c>ListenHandle</c>, as systemd socket activation does).
/// </summary>
public class EndPointKindsTests
{

    [Fact]
    public async Task AUnixSocketIsServedAndItsFileRemovedWhenTheServerStops()
    {
        var path = Path.Combine(Path.GetTempPath(), $"epoll-{Guid.NewGuid():N}.sock");
        try
        {
            await using (var app = await StartAsync(kestrel => kestrel.ListenUnixSocket(path)))
            {
                Assert.True(File.Exists(path));
                using var client = new HttpClient(new SocketsHttpHandler
                {
                    ConnectCallback = async (_, ct) =>
                    {
                        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                        await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), ct);
                        return new NetworkStream(socket, ownsSocket: true);
                    },
                });
                Assert.Equal("unix", await client.GetStringAsync("http://localhost/").WaitAsync(WaitLimit));
                await app.StopAsync().WaitAsync(WaitLimit);
            }
            Assert.False(File.Exists(path), "The socket file outlived the server.");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task AnExistingFileAtTheUnixSocketPathFailsTheStartAndIsLeftAlone()
    {
        var path = Path.Combine(Path.GetTempPath(), $"epoll-{Guid.NewGuid():N}.sock");
        File.WriteAllText(path, "not ours");
        try
        {
            var failed = await Assert.ThrowsAnyAsync<Exception>(() => StartAsync(kestrel => kestrel.ListenUnixSocket(path)));
            Assert.True(failed is AddressInUseException || failed.InnerException is AddressInUseException, failed.ToString());
            Assert.Equal("not ours", File.ReadAllText(path));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task AHandedInListeningFdIsServed()
    {
        // Bound and listening before the server starts, as a service manager hands it over; Kestrel's transport owns it
        // from then on and closes it when it stops.
        var fd = SocketInterop.Socket(SocketInterop.AF_INET).IntValue;
        Assert.True(SocketInterop.Bind(fd, new IPEndPoint(IPAddress.Loopback, 0)).IsSuccess);
        Assert.True(SocketInterop.Listen(fd, 16).IsSuccess);
        var port = Assert.IsType<IPEndPoint>(SocketInterop.GetLocalEndPoint(fd)).Port;

        await using var app = await StartAsync(kestrel => kestrel.ListenHandle((ulong)fd));
        using var client = new HttpClient();

        Assert.Equal("handle", await client.GetStringAsync($"http://127.0.0.1:{port}/").WaitAsync(WaitLimit));
        await app.StopAsync().WaitAsync(WaitLimit);
    }

    private static async Task<WebApplication> StartAsync(Action<KestrelServerOptions> listen)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseEpollTransport(o => o.ReactorCount = 1);
        builder.WebHost.ConfigureKestrel(listen);
        var app = builder.Build();
        // Says which kind of end point the connection came in on, as the transport reports it.
        app.MapGet("/", (HttpContext context) => context.Features.Get<IConnectionEndPointFeature>()?.LocalEndPoint switch
        {
            UnixDomainSocketEndPoint => "unix",
            IPEndPoint => "handle",
            var other => other?.GetType().Name ?? "none",
        });
        try
        {
            await app.StartAsync().WaitAsync(WaitLimit);
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }
        return app;
    }
}
