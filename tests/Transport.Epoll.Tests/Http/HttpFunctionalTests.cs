using System.Globalization;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Xunit.Abstractions;

namespace EpollTransport.Tests.Http;

/// <summary>
/// HTTP/1.1 behaviour through Kestrel, run once per transport: whatever passes on <see cref="KestrelHost.Sockets"/>
/// and fails on an epoll transport is a transport bug.
/// </summary>
public sealed class HttpFunctionalTests(ITestOutputHelper output)
{
    private const int EightMiB = 8 * 1024 * 1024;


    // Response pieces of uneven sizes, so writes straddle pipe segments, iovec limits and socket buffer sizes.
    private static readonly int[] s_pieceSizes = [1, 7, 4096, 65_536, 100_003, 13, 1_048_576, 262_144, 2, 31_337];

    public static TheoryData<string> Transports => KestrelHost.Transports;

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task ServedByTheNamedTransport(string transport)
    {
        await using var host = await StartAsync(transport);
        using var client = CreateClient(host);

        var typeName = await client.GetStringAsync("transport").WaitAsync(WaitLimit);

        if (transport == KestrelHost.Sockets)
        {
            Assert.StartsWith("Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets.", typeName, StringComparison.Ordinal);
        }
        else
        {
            Assert.StartsWith("EpollTransport.", typeName, StringComparison.Ordinal);
        }
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task SequentialRequestsReuseOneKeepAliveConnection(string transport)
    {
        await using var host = await StartAsync(transport);
        var connects = 0;
        using var handler = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = 1,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
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
        using var client = CreateClient(host, handler);

        var connections = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < 50; i++)
        {
            var body = await client.GetStringAsync($"connection?i={i}").WaitAsync(WaitLimit);
            var parts = body.Split('|');
            Assert.Equal(3, parts.Length);
            Assert.Equal(i.ToString(CultureInfo.InvariantCulture), parts[0]);
            connections.Add(parts[1] + "|" + parts[2]);
        }

        var only = Assert.Single(connections);
        Assert.False(string.IsNullOrEmpty(only.Split('|')[0]), "the server saw no connection id");
        Assert.Equal(1, Volatile.Read(ref connects));
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task PipelinedRequestsAreAnsweredInOrder(string transport)
    {
        const int Depth = 16;
        await using var host = await StartAsync(transport);
        using var cts = new CancellationTokenSource(WaitLimit);
        using var connection = await RawHttpClient.ConnectAsync(host.BaseAddress, cts.Token);

        var requests = new StringBuilder();
        for (var i = 0; i < Depth; i++)
        {
            requests.Append(CultureInfo.InvariantCulture, $"GET /echo-path/{i} HTTP/1.1\r\nHost: {host.BaseAddress.Authority}\r\n\r\n");
        }
        await connection.SendAsync(Encoding.ASCII.GetBytes(requests.ToString()), cts.Token);

        for (var i = 0; i < Depth; i++)
        {
            var response = await connection.ReadResponseAsync(cts.Token);
            Assert.Equal(200, response.StatusCode);
            Assert.Equal(i.ToString(CultureInfo.InvariantCulture), Encoding.ASCII.GetString(response.Body));
        }
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task ChunkedRequestBodyIsEchoed(string transport)
    {
        await using var host = await StartAsync(transport);
        using var client = CreateClient(host);
        var payload = Payload(seed: 3, length: 300_001);

        using var request = new HttpRequestMessage(HttpMethod.Post, "echo")
        {
            // A small copy buffer makes the client send many chunks, not one.
            Content = new StreamContent(new MemoryStream(payload), bufferSize: 3001),
        };
        request.Headers.TransferEncodingChunked = true;
        using var response = await client.SendAsync(request).WaitAsync(WaitLimit);

        Assert.Equal(200, (int)response.StatusCode);
        Assert.Equal("chunked", HeaderValue(response, "X-Request-Transfer-Encoding"));
        Assert.Equal("", HeaderValue(response, "X-Request-Content-Length"));
        var echoed = await response.Content.ReadAsByteArrayAsync().WaitAsync(WaitLimit);
        AssertSameBytes(payload, echoed);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task ResponseWithoutContentLengthIsChunked(string transport)
    {
        await using var host = await StartAsync(transport);
        using var client = CreateClient(host);

        using var response = await client.GetAsync("chunked", HttpCompletionOption.ResponseHeadersRead).WaitAsync(WaitLimit);

        Assert.Equal(200, (int)response.StatusCode);
        Assert.True(response.Headers.TransferEncodingChunked, "Transfer-Encoding: chunked expected");
        // Read before the body is buffered: HttpClient computes a Content-Length for buffered content.
        Assert.Null(response.Content.Headers.ContentLength);
        var body = await response.Content.ReadAsByteArrayAsync().WaitAsync(WaitLimit);
        AssertSameBytes(ChunkedResponseBody(), body);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task LargeUploadArrivesByteExact(string transport)
    {
        await using var host = await StartAsync(transport);
        using var client = CreateClient(host);
        var payload = Payload(seed: 42, length: EightMiB);

        using var content = new ByteArrayContent(payload);
        using var response = await client.PostAsync("sha256", content).WaitAsync(WaitLimit);
        var answer = await response.Content.ReadAsStringAsync().WaitAsync(WaitLimit);

        Assert.Equal(200, (int)response.StatusCode);
        Assert.Equal($"{EightMiB}:{Convert.ToHexString(SHA256.HashData(payload))}", answer);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task LargeDownloadArrivesByteExact(string transport)
    {
        await using var host = await StartAsync(transport);
        using var client = CreateClient(host);

        var body = await client.GetByteArrayAsync($"random/7/{EightMiB}").WaitAsync(WaitLimit);

        AssertSameBytes(Payload(seed: 7, length: EightMiB), body);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task LargeBodyIsEchoedByteExactWhileStillBeingSent(string transport)
    {
        await using var host = await StartAsync(transport);
        using var cts = new CancellationTokenSource(WaitLimit);
        using var connection = await RawHttpClient.ConnectAsync(host.BaseAddress, cts.Token);
        var payload = Payload(seed: 11, length: EightMiB);

        // The server echoes while the client still sends, so the client must read at the same time: a client that
        // sent all 8 MiB first would deadlock against the server's backpressure, on any transport.
        var send = SendEchoRequestAsync(connection, host, payload, cts.Token);
        var response = await connection.ReadResponseAsync(cts.Token);
        await send.WaitAsync(cts.Token);

        Assert.Equal(200, response.StatusCode);
        Assert.Equal(payload.Length.ToString(CultureInfo.InvariantCulture), response.Headers["Content-Length"]);
        AssertSameBytes(payload, response.Body);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task ManyConcurrentConnectionsGetTheirOwnAnswers(string transport)
    {
        const int Clients = 64;
        const int RequestsPerClient = 20;
        await using var host = await StartAsync(transport);
        using var handler = new SocketsHttpHandler { MaxConnectionsPerServer = Clients };
        using var client = CreateClient(host, handler);

        async Task RunClientAsync(int clientIndex)
        {
            for (var j = 0; j < RequestsPerClient; j++)
            {
                var tag = $"{clientIndex}-{j}";
                if (j % 2 == 0)
                {
                    Assert.Equal(tag, await client.GetStringAsync($"echo-path/{tag}"));
                }
                else
                {
                    var payload = Payload(seed: clientIndex * RequestsPerClient + j, length: 1 + (clientIndex * 997 + j * 131) % 20_000);
                    using var content = new ByteArrayContent(payload);
                    using var response = await client.PostAsync("echo", content);
                    Assert.Equal(200, (int)response.StatusCode);
                    var echoed = await response.Content.ReadAsByteArrayAsync();
                    AssertSameBytes(payload, echoed);
                }
            }
        }

        var clients = new Task[Clients];
        for (var i = 0; i < Clients; i++)
        {
            clients[i] = RunClientAsync(i);
        }
        await Task.WhenAll(clients).WaitAsync(WaitLimit);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task ClientClosingMidResponseAbortsTheRequest(string transport)
    {
        var aborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var handlerDone = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var host = await StartAsync(transport, app => app.MapGet("/endless", async context =>
        {
            using var registration = context.RequestAborted.Register(() => aborted.TrySetResult());
            Exception? writeFailure = null;
            try
            {
                var piece = Payload(seed: 5, length: 16 * 1024);
                // 64 MiB at most: far more than the socket buffers and pipes hold, so the client's close stops this
                // loop long before its end, either by an abort or by writes that no longer go anywhere.
                for (var i = 0; i < 4096 && !context.RequestAborted.IsCancellationRequested; i++)
                {
                    await context.Response.Body.WriteAsync(piece, context.RequestAborted);
                }
            }
            catch (Exception e)
            {
                writeFailure = e;
            }
            try
            {
                // Kestrel may turn writes into no-ops before the transport reports the close; the request stays
                // active until it does, or there would be nothing left to abort.
                await aborted.Task.WaitAsync(WaitLimit);
            }
            finally
            {
                handlerDone.TrySetResult(writeFailure);
            }
        }));
        using var cts = new CancellationTokenSource(WaitLimit);

        using (var connection = await RawHttpClient.ConnectAsync(host.BaseAddress, cts.Token))
        {
            await connection.SendAsync(Encoding.ASCII.GetBytes($"GET /endless HTTP/1.1\r\nHost: {host.BaseAddress.Authority}\r\n\r\n"), cts.Token);
            var head = await connection.ReadHeadAsync(cts.Token);
            Assert.Equal(200, head.StatusCode);
            await connection.DiscardAsync(256 * 1024, cts.Token);
        }

        await aborted.Task.WaitAsync(WaitLimit);
        var writeFailure = await handlerDone.Task.WaitAsync(WaitLimit);
        using var client = CreateClient(host);
        Assert.Equal("after-abort", await client.GetStringAsync("echo-path/after-abort").WaitAsync(WaitLimit));

        // Kestrel's contract with a transport: a client that goes away aborts the request (RequestAborted, so a
        // write with that token may throw OperationCanceledException); it is neither an I/O error thrown at the
        // application's writes nor a server error in the log.
        Assert.True(writeFailure is null or OperationCanceledException, $"The response write failed with {writeFailure}");
        Assert.Empty(host.LoggedErrors);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task OversizedRequestHeadersGet431AndTheServerKeepsServing(string transport)
    {
        await using var host = await StartAsync(transport);
        using var cts = new CancellationTokenSource(WaitLimit);

        using (var connection = await RawHttpClient.ConnectAsync(host.BaseAddress, cts.Token))
        {
            var request = $"GET /echo-path/big HTTP/1.1\r\nHost: {host.BaseAddress.Authority}\r\nX-Big: {new string('a', 100 * 1024)}\r\n\r\n";
            await connection.SendAsync(Encoding.ASCII.GetBytes(request), cts.Token);
            var response = await connection.ReadResponseAsync(cts.Token);
            Assert.Equal(431, response.StatusCode);
            Assert.Empty((await connection.ReadToEndAsync(cts.Token)).Received);
        }

        using var client = CreateClient(host);
        Assert.Equal("still-serving", await client.GetStringAsync("echo-path/still-serving").WaitAsync(WaitLimit));
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task MalformedRequestsGetAnErrorStatusWithoutDisturbingAnotherConnection(string transport)
    {
        await using var host = await StartAsync(transport);
        using var cts = new CancellationTokenSource(WaitLimit);
        using var healthy = await RawHttpClient.ConnectAsync(host.BaseAddress, cts.Token);
        var random = new Random(7);
        var garbage = new byte[4096];
        random.NextBytes(garbage);
        (string Request, int Status)[] malformed =
        [
            ("GARBAGE\r\n\r\n", 400),
            ("GET / HTTP/9.9\r\nHost: x\r\n\r\n", 505),
            ("GET / HTTP/1.1\r\nHost: x\r\nBad Header: x\r\n\r\n", 400),
            ("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nabc\r\n0\r\n\r\n", 400),
            ("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", 400),
            (Encoding.Latin1.GetString(garbage) + "\r\n\r\n", 400),
        ];

        for (var i = 0; i < malformed.Length; i++)
        {
            using (var bad = await RawHttpClient.ConnectAsync(host.BaseAddress, cts.Token))
            {
                await bad.SendAsync(Encoding.Latin1.GetBytes(malformed[i].Request), cts.Token);
                var head = await bad.ReadHeadAsync(cts.Token);
                Assert.Equal(malformed[i].Status, head.StatusCode);
            }

            // Another connection's keep-alive exchange is untouched.
            await healthy.SendAsync(Encoding.ASCII.GetBytes($"GET /echo-path/ok{i} HTTP/1.1\r\nHost: {host.BaseAddress.Authority}\r\n\r\n"), cts.Token);
            var response = await healthy.ReadResponseAsync(cts.Token);
            Assert.Equal(200, response.StatusCode);
            Assert.Equal($"ok{i}", Encoding.ASCII.GetString(response.Body));
        }
    }

    private Task<KestrelHost> StartAsync(string transport, Action<WebApplication>? mapMore = null)
        => KestrelHost.StartAsync(transport, app =>
        {
            MapEndpoints(app);
            mapMore?.Invoke(app);
        }, output);

    private static void MapEndpoints(WebApplication app)
    {
        app.MapGet("/transport", context =>
            WriteTextAsync(context.Response, context.Features.Get<IConnectionTransportFeature>()?.GetType().FullName ?? "(none)"));

        app.MapGet("/echo-path/{value}", context =>
            WriteTextAsync(context.Response, (string)context.Request.RouteValues["value"]!));

        app.MapGet("/connection", context =>
            WriteTextAsync(context.Response, $"{context.Request.Query["i"]}|{context.Connection.Id}|{context.Connection.RemotePort}"));

        app.MapPost("/echo", async context =>
        {
            if (context.Request.ContentLength is long length)
            {
                context.Response.ContentLength = length;
            }
            context.Response.Headers["X-Request-Transfer-Encoding"] = context.Request.Headers.TransferEncoding.ToString();
            context.Response.Headers["X-Request-Content-Length"] = context.Request.Headers.ContentLength.ToString();
            await context.Request.BodyReader.CopyToAsync(context.Response.BodyWriter, context.RequestAborted);
        });

        app.MapPost("/sha256", async context =>
            await WriteTextAsync(context.Response, await BodyHash.OfRequestAsync(context)));

        app.MapGet("/random/{seed:int}/{length:int}", async context =>
        {
            var seed = int.Parse((string)context.Request.RouteValues["seed"]!, CultureInfo.InvariantCulture);
            var length = int.Parse((string)context.Request.RouteValues["length"]!, CultureInfo.InvariantCulture);
            var payload = Payload(seed, length);
            var offset = 0;
            for (var i = 0; offset < payload.Length; i++)
            {
                var size = Math.Min(s_pieceSizes[i % s_pieceSizes.Length], payload.Length - offset);
                await context.Response.BodyWriter.WriteAsync(payload.AsMemory(offset, size), context.RequestAborted);
                offset += size;
            }
        });

        app.MapGet("/chunked", async context =>
        {
            foreach (var piece in ChunkedResponsePieces())
            {
                await context.Response.Body.WriteAsync(piece, context.RequestAborted);
                await context.Response.Body.FlushAsync(context.RequestAborted);
            }
        });
    }

    private static IEnumerable<byte[]> ChunkedResponsePieces()
    {
        int[] sizes = [1, 100, 8192, 70_000, 3];
        for (var i = 0; i < sizes.Length; i++)
        {
            yield return Payload(seed: 100 + i, length: sizes[i]);
        }
    }

    private static byte[] ChunkedResponseBody() => ChunkedResponsePieces().SelectMany(piece => piece).ToArray();

    private static Task WriteTextAsync(HttpResponse response, string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        response.ContentType = "text/plain; charset=utf-8";
        response.ContentLength = bytes.Length;
        return response.Body.WriteAsync(bytes, 0, bytes.Length);
    }

    private static async Task SendEchoRequestAsync(RawHttpClient connection, KestrelHost host, byte[] payload, CancellationToken cancellationToken)
    {
        await connection.SendAsync(Encoding.ASCII.GetBytes(
            $"POST /echo HTTP/1.1\r\nHost: {host.BaseAddress.Authority}\r\nContent-Length: {payload.Length}\r\n\r\n"), cancellationToken);
        var offset = 0;
        for (var i = 0; offset < payload.Length; i++)
        {
            var size = Math.Min(s_pieceSizes[(i + 3) % s_pieceSizes.Length], payload.Length - offset);
            await connection.SendAsync(payload.AsMemory(offset, size), cancellationToken);
            offset += size;
        }
    }

    private static byte[] Payload(int seed, int length)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private static HttpClient CreateClient(KestrelHost host, HttpMessageHandler? handler = null)
        => new(handler ?? new SocketsHttpHandler(), disposeHandler: handler is null)
        {
            BaseAddress = host.BaseAddress,
            Timeout = WaitLimit,
        };

    private static string HeaderValue(HttpResponseMessage response, string name)
        => response.Headers.TryGetValues(name, out var values) ? string.Join(",", values) : "(missing)";

    private static void AssertSameBytes(ReadOnlySpan<byte> expected, ReadOnlySpan<byte> actual)
    {
        var common = expected.CommonPrefixLength(actual);
        if (common != expected.Length || actual.Length != expected.Length)
        {
            Assert.Fail($"Bodies differ: expected {expected.Length} bytes, got {actual.Length}; first difference at byte {common}.");
        }
    }
}
