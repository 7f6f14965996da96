using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Xunit.Abstractions;

namespace EpollTransport.Tests.Protocols;

/// <summary>
/// Trailers over HTTP/2 cleartext (prior knowledge). Response trailers are read with HttpClient
/// (<see cref="HttpResponseMessage.TrailingHeaders"/>). HttpClient has no API to send request trailers, so those go
/// over a minimal HTTP/2 client on a bare socket: a trailing HEADERS frame after the DATA frames.
/// </summary>
public sealed class TrailersTests(ITestOutputHelper output) : ProtocolTestBase(output)
{
    [Theory]
    [MemberData(nameof(Transports))]
    public async Task ResponseTrailersFollowTheBody(string transport)
    {
        await using var host = await StartAsync(transport);
        using var client = new HttpClient
        {
            BaseAddress = host.BaseAddress,
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Timeout = WaitLimit,
        };

        // The default completion option reads the whole body, and with it the trailers.
        using var response = await client.GetAsync("response-trailers/300007").WaitAsync(WaitLimit);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(HttpVersion.Version20, response.Version);
        host.AssertServedBy(response);
        Assert.Equal("true", string.Join(",", response.Headers.GetValues("X-Supports-Trailers")));
        var body = await response.Content.ReadAsByteArrayAsync().WaitAsync(WaitLimit);
        Assert.Equal(300_007, body.Length);
        Assert.Equal(Convert.ToHexString(SHA256.HashData(body)), string.Join(",", response.TrailingHeaders.GetValues("x-content-sha256")));
        Assert.Equal(["first", "second"], response.TrailingHeaders.GetValues("x-multi"));
        // Trailers are not headers.
        Assert.False(response.Headers.Contains("x-content-sha256"));
        Assert.Empty(host.LoggedErrors);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task RequestTrailersReachTheApplicationAfterTheBody(string transport)
    {
        await using var host = await StartAsync(transport);
        using var cts = new CancellationTokenSource(WaitLimit);
        // Under the initial 65,535-byte flow-control windows, so the client need not wait for WINDOW_UPDATE.
        var body = new byte[40_001];
        new Random(5).NextBytes(body);
        var sha = Convert.ToHexString(SHA256.HashData(body));

        using var connection = await RawHttp2Connection.ConnectAsync(host.BaseAddress, cts.Token);
        await connection.SendHeadersAsync(streamId: 1, endStream: false,
        [
            (":method", "POST"),
            (":scheme", "http"),
            (":authority", host.BaseAddress.Authority),
            (":path", "/request-trailers"),
            ("content-type", "application/octet-stream"),
        ], cts.Token);
        for (var offset = 0; offset < body.Length; offset += 16_384)
        {
            await connection.SendDataAsync(streamId: 1, body.AsMemory(offset, Math.Min(16_384, body.Length - offset)), cts.Token);
        }
        await connection.SendHeadersAsync(streamId: 1, endStream: true,
        [
            ("x-content-sha256", sha),
            ("x-note", "sent after the body"),
        ], cts.Token);
        var answer = Encoding.ASCII.GetString(await connection.ReadResponseBodyAsync(streamId: 1, cts.Token));

        Assert.Equal($"supports=true;available=true;length={body.Length};sha256={sha};x-content-sha256={sha};x-note=sent after the body", answer);
        Assert.Empty(host.LoggedErrors);
    }

    private Task<KestrelHost> StartAsync(string transport)
        => StartAsync(transport,
            endpoint => endpoint.Protocols = HttpProtocols.Http2,
            app =>
            {
                app.MapGet("/response-trailers/{length:int}", async context =>
                {
                    var supports = context.Response.SupportsTrailers();
                    context.Response.Headers["X-Supports-Trailers"] = supports ? "true" : "false";
                    context.Response.DeclareTrailer("x-content-sha256");
                    var body = new byte[int.Parse((string)context.Request.RouteValues["length"]!, System.Globalization.CultureInfo.InvariantCulture)];
                    new Random(body.Length).NextBytes(body);
                    await context.Response.Body.WriteAsync(body, context.RequestAborted);
                    if (supports)
                    {
                        context.Response.AppendTrailer("x-content-sha256", Convert.ToHexString(SHA256.HashData(body)));
                        context.Response.AppendTrailer("x-multi", new Microsoft.Extensions.Primitives.StringValues(["first", "second"]));
                    }
                });

                app.MapPost("/request-trailers", async context =>
                {
                    var supports = context.Request.SupportsTrailers();
                    var body = new MemoryStream();
                    await context.Request.Body.CopyToAsync(body, context.RequestAborted);
                    // Trailers are available once the body has been read to its end.
                    var available = context.Request.CheckTrailersAvailable();
                    var sha = Convert.ToHexString(SHA256.HashData(body.ToArray()));
                    await context.Response.WriteAsync(
                        $"supports={(supports ? "true" : "false")};available={(available ? "true" : "false")};length={body.Length};sha256={sha};" +
                        $"x-content-sha256={context.Request.GetTrailer("x-content-sha256")};x-note={context.Request.GetTrailer("x-note")}",
                        context.RequestAborted);
                });
            });

    /// <summary>
    /// Just enough HTTP/2 to send one request with trailers and read its response body: the connection preface,
    /// SETTINGS (and their acknowledgement), HEADERS encoded as HPACK literals without indexing or Huffman coding,
    /// DATA. The response's header blocks are skipped, not decoded.
    /// </summary>
    private sealed class RawHttp2Connection : IDisposable
    {
        private const byte Data = 0x0, Headers = 0x1, RstStream = 0x3, Settings = 0x4, Ping = 0x6, GoAway = 0x7;
        private const byte EndStream = 0x1, Ack = 0x1, EndHeaders = 0x4, Padded = 0x8;

        private readonly Socket _socket;
        private readonly NetworkStream _stream;

        private RawHttp2Connection(Socket socket)
        {
            _socket = socket;
            _stream = new NetworkStream(socket, ownsSocket: false);
        }

        public static async Task<RawHttp2Connection> ConnectAsync(Uri address, CancellationToken cancellationToken)
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, address.Port), cancellationToken);
                var connection = new RawHttp2Connection(socket);
                await connection._stream.WriteAsync("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray(), cancellationToken);
                await connection.SendFrameAsync(Settings, 0, 0, ReadOnlyMemory<byte>.Empty, cancellationToken);
                return connection;
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }

        public Task SendHeadersAsync(int streamId, bool endStream, (string Name, string Value)[] fields, CancellationToken cancellationToken)
        {
            var block = new MemoryStream();
            foreach (var (name, value) in fields)
            {
                // Literal Header Field without Indexing, new name (RFC 7541 6.2.2), with plain string literals.
                block.WriteByte(0x00);
                WriteString(block, name);
                WriteString(block, value);
            }
            return SendFrameAsync(Headers, (byte)(EndHeaders | (endStream ? EndStream : 0)), streamId, block.ToArray(), cancellationToken);
        }

        public Task SendDataAsync(int streamId, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
            => SendFrameAsync(Data, 0, streamId, data, cancellationToken);

        /// <summary>Reads frames until the stream ends, answering SETTINGS and PING; returns its DATA.</summary>
        public async Task<byte[]> ReadResponseBodyAsync(int streamId, CancellationToken cancellationToken)
        {
            var body = new MemoryStream();
            var header = new byte[9];
            while (true)
            {
                await _stream.ReadExactlyAsync(header, cancellationToken);
                var length = (header[0] << 16) | (header[1] << 8) | header[2];
                var type = header[3];
                var flags = header[4];
                var id = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(5)) & 0x7FFF_FFFF;
                var payload = new byte[length];
                await _stream.ReadExactlyAsync(payload, cancellationToken);

                switch (type)
                {
                    case Settings when (flags & Ack) == 0:
                        await SendFrameAsync(Settings, Ack, 0, ReadOnlyMemory<byte>.Empty, cancellationToken);
                        break;
                    case Ping when (flags & Ack) == 0:
                        await SendFrameAsync(Ping, Ack, 0, payload, cancellationToken);
                        break;
                    case RstStream when id == streamId:
                        throw new InvalidOperationException($"The server reset the stream: error {BinaryPrimitives.ReadUInt32BigEndian(payload)}.");
                    case GoAway:
                        throw new InvalidOperationException($"The server sent GOAWAY: error {BinaryPrimitives.ReadUInt32BigEndian(payload.AsSpan(4))}.");
                    case Data when id == streamId:
                        var data = payload.AsSpan();
                        if ((flags & Padded) != 0)
                        {
                            data = data[1..^data[0]];
                        }
                        body.Write(data);
                        break;
                }
                if (id == streamId && (type == Data || type == Headers) && (flags & EndStream) != 0)
                {
                    return body.ToArray();
                }
            }
        }

        public void Dispose()
        {
            _stream.Dispose();
            _socket.Dispose();
        }

        private async Task SendFrameAsync(byte type, byte flags, int streamId, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken)
        {
            var frame = new byte[9 + payload.Length];
            frame[0] = (byte)(payload.Length >> 16);
            frame[1] = (byte)(payload.Length >> 8);
            frame[2] = (byte)payload.Length;
            frame[3] = type;
            frame[4] = flags;
            BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(5), streamId);
            payload.CopyTo(frame.AsMemory(9));
            await _stream.WriteAsync(frame, cancellationToken);
        }

        private static void WriteString(MemoryStream block, string value)
        {
            var bytes = Encoding.ASCII.GetBytes(value);
            // A string length with a 7-bit prefix (RFC 7541 5.1), Huffman bit clear.
            if (bytes.Length < 0x7F)
            {
                block.WriteByte((byte)bytes.Length);
            }
            else
            {
                block.WriteByte(0x7F);
                var rest = bytes.Length - 0x7F;
                while (rest >= 0x80)
                {
                    block.WriteByte((byte)(rest % 0x80 + 0x80));
                    rest /= 0x80;
                }
                block.WriteByte((byte)rest);
            }
            block.Write(bytes);
        }
    }
}
