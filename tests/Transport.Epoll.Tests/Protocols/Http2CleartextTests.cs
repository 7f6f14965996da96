using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Xunit.Abstractions;

namespace EpollTransport.Tests.Protocols;

/// <summary>
/// HTTP/2 without TLS, by prior knowledge: many streams multiplexed over one connection of the transport.
/// </summary>
public sealed class Http2CleartextTests(ITestOutputHelper output) : ProtocolTestBase(output)
{
    // Kestrel's default SETTINGS_MAX_CONCURRENT_STREAMS: every request can be open at once.
    private const int Streams = 100;

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task HundredConcurrentStreamsShareOneConnection(string transport)
    {
        // No response is written until every request has arrived: the server holds all the streams open at once,
        // so they must be multiplexed on the connection rather than served one after another.
        var arrived = 0;
        var allArrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var host = await StartAsync(transport,
            endpoint => endpoint.Protocols = HttpProtocols.Http2,
            app => app.MapPost("/stream/{index:int}", async context =>
            {
                if (Interlocked.Increment(ref arrived) == Streams)
                {
                    allArrived.TrySetResult();
                }
                await allArrived.Task.WaitAsync(WaitLimit, context.RequestAborted);

                var index = (string)context.Request.RouteValues["index"]!;
                using var reader = new StreamReader(context.Request.Body);
                var body = await reader.ReadToEndAsync(context.RequestAborted);
                context.Response.Headers["X-Protocol"] = context.Request.Protocol;
                // Answers of different lengths, some spanning several DATA frames.
                await context.Response.WriteAsync($"{index}:{body}:{new string('x', int.Parse(index, CultureInfo.InvariantCulture) * 397)}",
                    context.RequestAborted);
            }));

        var connects = 0;
        using var handler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = false,
            ConnectCallback = async (context, cancellationToken) =>
            {
                Interlocked.Increment(ref connects);
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        using var client = new HttpClient(handler)
        {
            BaseAddress = host.BaseAddress,
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Timeout = WaitLimit,
        };

        async Task RequestAsync(int index)
        {
            var tag = $"request-{index}-{Guid.NewGuid():N}";
            using var content = new StringContent(tag);
            using var response = await client.PostAsync($"stream/{index}", content);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(HttpVersion.Version20, response.Version);
            Assert.Equal("HTTP/2", string.Join(",", response.Headers.GetValues("X-Protocol")));
            host.AssertServedBy(response);
            Assert.Equal($"{index}:{tag}:{new string('x', index * 397)}", await response.Content.ReadAsStringAsync());
        }

        await Task.WhenAll(Enumerable.Range(0, Streams).Select(RequestAsync)).WaitAsync(WaitLimit);

        Assert.Equal(Streams, Volatile.Read(ref arrived));
        Assert.Single(host.ConnectionIds);
        Assert.Equal(1, Volatile.Read(ref connects));
        Assert.Empty(host.LoggedErrors);
    }
}
