using System.Buffers;
using System.Globalization;
using System.Net;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Xunit.Abstractions;

namespace EpollTransport.Tests.Protocols;

/// <summary>
/// A long response flushed piecewise (Server-Sent Events): each flush must reach the client while the response is
/// still open. The server writes event i+1 only after the client has read event i, so a flush the transport held
/// back would stall the exchange until the timeout.
/// </summary>
public sealed class ServerSentEventsTests(ITestOutputHelper output) : ProtocolTestBase(output)
{
    private const int Events = 24;

    // Event payload sizes: tiny ones that a transport could be tempted to hold back, and ones past its write buffer.
    private static readonly int[] s_dataSizes = [0, 1, 13, 4_000, 70_000, 2, 200_000, 5];

    [Theory]
    [MemberData(nameof(TransportsAndVersions))]
    public async Task EachFlushedEventArrivesBeforeTheNextIsWritten(string transport, string protocol)
    {
        var http2 = protocol == "HTTP/2";
        using var acknowledged = new SemaphoreSlim(0);
        var started = 0;
        var responseEnded = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var host = await StartAsync(transport,
            endpoint => endpoint.Protocols = http2 ? HttpProtocols.Http2 : HttpProtocols.Http1,
            app => app.MapGet("/events", async context =>
            {
                context.Response.ContentType = "text/event-stream";
                context.Response.Headers.CacheControl = "no-cache";
                for (var i = 0; i < Events; i++)
                {
                    Volatile.Write(ref started, i + 1);
                    // Written to the PipeWriter, which (unlike Stream.WriteAsync) does not flush on its own: the
                    // event leaves only through the explicit flush.
                    context.Response.BodyWriter.Write(Encoding.UTF8.GetBytes(Event(i)));
                    await context.Response.BodyWriter.FlushAsync(context.RequestAborted);
                    if (!await acknowledged.WaitAsync(WaitLimit, context.RequestAborted))
                    {
                        throw new TimeoutException($"The client did not acknowledge event {i}.");
                    }
                }
                responseEnded.TrySetResult();
            }));
        using var client = new HttpClient
        {
            BaseAddress = host.BaseAddress,
            DefaultRequestVersion = http2 ? HttpVersion.Version20 : HttpVersion.Version11,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Timeout = Timeout.InfiniteTimeSpan,
        };
        using var cts = new CancellationTokenSource(WaitLimit);

        using var response = await client.GetAsync("events", HttpCompletionOption.ResponseHeadersRead, cts.Token);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(http2 ? HttpVersion.Version20 : HttpVersion.Version11, response.Version);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        host.AssertServedBy(response);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cts.Token));

        for (var i = 0; i < Events; i++)
        {
            var lines = new List<string>();
            while (await reader.ReadLineAsync(cts.Token) is { Length: > 0 } line)
            {
                lines.Add(line);
            }
            Assert.Equal(Event(i), string.Join("\n", lines) + "\n\n");
            // The server is waiting for this acknowledgement: it has started no later event, and not ended.
            Assert.Equal(i + 1, Volatile.Read(ref started));
            Assert.False(responseEnded.Task.IsCompleted, "the response ended before the client acknowledged the last event");
            acknowledged.Release();
        }

        Assert.Null(await reader.ReadLineAsync(cts.Token));
        await responseEnded.Task.WaitAsync(WaitLimit);
        Assert.Empty(host.LoggedErrors);
    }

    private static string Event(int index)
    {
        var size = s_dataSizes[index % s_dataSizes.Length];
        var data = new string((char)('a' + index % 26), size);
        return string.Create(CultureInfo.InvariantCulture, $"id: {index}\nevent: tick\ndata: {index}:{data}\n\n");
    }
}
