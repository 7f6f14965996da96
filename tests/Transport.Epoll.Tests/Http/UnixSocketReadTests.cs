using System.Diagnostics.Metrics;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace EpollTransport.Tests.Http;

/// <summary>
/// On a Unix stream socket a receive shorter than its buffer ends the read burst without the EAGAIN recv (the queue
/// is empty, and a later arrival raises a new edge). What must never happen: bytes left unread. Each case would hang
/// (and fail at its limit) if the rule ended a burst with bytes still queued.
/// </summary>
public sealed class UnixSocketReadTests : IAsyncLifetime
{
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"epoll-read-{Guid.NewGuid():N}.sock");
    private readonly TaskCompletionSource _firstBytesReceived = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private WebApplication _app = null!;

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseEpollTransport(o => o.ReactorCount = 1);
        // Each connection's first bytes are awaited before Kestrel gets the connection, and announced: the transport has
        // received them, and ended that read burst, by then. Neither consumed nor examined, they are Kestrel's first
        // read.
        builder.WebHost.ConfigureKestrel(k => k.ListenUnixSocket(_path, listen => listen.Use(next => async connection =>
        {
            var first = await connection.Transport.Input.ReadAsync();
            connection.Transport.Input.AdvanceTo(first.Buffer.Start);
            _firstBytesReceived.TrySetResult();
            await next(connection);
        })));
        _app = builder.Build();
        // Bodies with a Content-Length, so that a response ends with its body (ReadResponseAsync).
        _app.MapGet("/text/{word}", (string word) => Results.Bytes(Encoding.ASCII.GetBytes(word), "text/plain"));
        _app.MapPost("/count", async (HttpContext context) =>
        {
            long total = 0;
            var buffer = new byte[64 * 1024];
            int read;
            while ((read = await context.Request.Body.ReadAsync(buffer)) > 0)
            {
                total += read;
            }
            return Results.Bytes(Encoding.ASCII.GetBytes(total.ToString(System.Globalization.CultureInfo.InvariantCulture)), "text/plain");
        });
        await _app.StartAsync().WaitAsync(WaitLimit);
    }

    public async Task DisposeAsync()
    {
        await _app.DisposeAsync();
        File.Delete(_path);
    }

    [Fact]
    public async Task ARequestWrittenInTwoPartsAroundTheServersReadIsAnswered()
    {
        using var socket = await ConnectAsync();
        var before = ShortReads();

        await socket.SendAsync(Encoding.ASCII.GetBytes("GET /text/split HTTP/1.1\r\nHo"));
        // The first part has been received (its read burst over) before the rest is written.
        await _firstBytesReceived.Task.WaitAsync(WaitLimit);
        await socket.SendAsync(Encoding.ASCII.GetBytes("st: test\r\n\r\n"));

        Assert.EndsWith("split", await ReadResponseAsync(socket, "split"));
        // Both parts ended their bursts with a short receive, none with EAGAIN.
        Assert.True(ShortReads() - before >= 2, $"short receives: {ShortReads() - before}");
    }

    [Fact]
    public async Task AnUploadFarLargerThanOneReceiveIsReadWhole()
    {
        // 4 MiB in one write: every receive but the last fills its buffer, so reading must go on to the end.
        using var socket = await ConnectAsync();
        const int size = 4 * 1024 * 1024;
        var request = Encoding.ASCII.GetBytes($"POST /count HTTP/1.1\r\nHost: test\r\nContent-Length: {size}\r\n\r\n");
        var sending = Task.Run(async () =>
        {
            await socket.SendAsync(request);
            await socket.SendAsync(new byte[size]);
        });

        Assert.EndsWith(size.ToString(System.Globalization.CultureInfo.InvariantCulture), await ReadResponseAsync(socket, size.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        await sending.WaitAsync(WaitLimit);
    }

    [Fact]
    public async Task ManyRequestsSplitAtEveryByteAreAllAnswered()
    {
        // 200 requests on one connection, each written in two parts split at a different byte, the second part sent as
        // soon as the first is: whichever side of a receive the split falls on, every request is answered.
        using var socket = await ConnectAsync();
        var request = Encoding.ASCII.GetBytes("GET /text/again HTTP/1.1\r\nHost: test\r\n\r\n");
        for (var i = 0; i < 200; i++)
        {
            var split = 1 + i % (request.Length - 1);
            await socket.SendAsync(request.AsMemory(0, split));
            await socket.SendAsync(request.AsMemory(split));
            Assert.EndsWith("again", await ReadResponseAsync(socket, "again"));
        }
    }

    private async Task<Socket> ConnectAsync()
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new System.Net.Sockets.UnixDomainSocketEndPoint(_path)).WaitAsync(WaitLimit);
        return socket;
    }

    /// <summary>Reads until the response ends with <paramref name="body"/> (the test's bodies are short and unique).</summary>
    private static async Task<string> ReadResponseAsync(Socket socket, string body)
    {
        using var limit = new CancellationTokenSource(WaitLimit);
        var received = new StringBuilder();
        var buffer = new byte[4096];
        while (!received.ToString().EndsWith("\r\n\r\n" + body, StringComparison.Ordinal))
        {
            var read = await socket.ReceiveAsync(buffer, limit.Token);
            Assert.True(read > 0, $"the server closed the connection after: {received}");
            received.Append(Encoding.ASCII.GetString(buffer, 0, read));
        }
        return received.ToString();
    }

    /// <summary>The server's <c>epoll.reactor.read_short_drained</c>, from its own meter.</summary>
    private long ShortReads()
    {
        var factory = _app.Services.GetRequiredService<IMeterFactory>();
        long total = 0;
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Scope == factory && instrument.Name == "epoll.reactor.read_short_drained")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) => total += value);
        listener.Start();
        listener.RecordObservableInstruments();
        return total;
    }
}
