using System.Net;
using System.Net.WebSockets;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Xunit.Abstractions;

namespace EpollTransport.Tests.Protocols;

/// <summary>
/// WebSockets through the transport, over an HTTP/1.1 upgrade and over HTTP/2 (RFC 8441, cleartext by prior
/// knowledge): whole messages up to 1 MiB echoed, then the close handshake.
/// </summary>
public sealed class WebSocketTests(ITestOutputHelper output) : ProtocolTestBase(output)
{
    private const int OneMiB = 1024 * 1024;

    // Around the frame-length encodings (7-bit, 16-bit, 64-bit) and up to 1 MiB.
    private static readonly int[] s_sizes = [0, 1, 125, 126, 127, 65_535, 65_536, 65_537, 300_007, OneMiB];

    [Theory]
    [MemberData(nameof(TransportsAndVersions))]
    public async Task MessagesAreEchoedWholeAndTheCloseHandshakeCompletes(string transport, string protocol)
    {
        var http2 = protocol == "HTTP/2";
        var serverSawClose = new TaskCompletionSource<(WebSocketCloseStatus? Status, string? Description, string Protocol)>(
            TaskCreationOptions.RunContinuationsAsynchronously);
        await using var host = await StartAsync(transport,
            endpoint => endpoint.Protocols = http2 ? HttpProtocols.Http2 : HttpProtocols.Http1,
            app =>
            {
                app.UseWebSockets();
                app.Map("/ws", async context =>
                {
                    if (!context.WebSockets.IsWebSocketRequest)
                    {
                        context.Response.StatusCode = StatusCodes.Status400BadRequest;
                        return;
                    }
                    using var socket = await context.WebSockets.AcceptWebSocketAsync();
                    var (status, description) = await EchoUntilCloseAsync(socket, context.RequestAborted);
                    serverSawClose.TrySetResult((status, description, context.Request.Protocol));
                });
            });

        using var handler = new SocketsHttpHandler();
        using var invoker = new HttpMessageInvoker(handler);
        using var client = new ClientWebSocket();
        client.Options.CollectHttpResponseDetails = true;
        if (http2)
        {
            client.Options.HttpVersion = HttpVersion.Version20;
            client.Options.HttpVersionPolicy = HttpVersionPolicy.RequestVersionExact;
        }
        using var cts = new CancellationTokenSource(WaitLimit);
        var uri = new UriBuilder(host.BaseAddress) { Scheme = "ws", Path = "/ws" }.Uri;

        await client.ConnectAsync(uri, invoker, cts.Token);

        Assert.Equal(http2 ? HttpStatusCode.OK : HttpStatusCode.SwitchingProtocols, client.HttpStatusCode);
        host.AssertServedBy(client.HttpResponseHeaders?.TryGetValue(KestrelHost.TransportHeader, out var values) == true
            ? string.Join(",", values) : null);

        foreach (var size in s_sizes)
        {
            var binary = Payload(size);
            await client.SendAsync(binary, WebSocketMessageType.Binary, endOfMessage: true, cts.Token);
            AssertEchoed(binary, WebSocketMessageType.Binary, await ReceiveMessageAsync(client, cts.Token));

            var text = Utf8Text(size);
            await client.SendAsync(text, WebSocketMessageType.Text, endOfMessage: true, cts.Token);
            AssertEchoed(text, WebSocketMessageType.Text, await ReceiveMessageAsync(client, cts.Token));
        }

        // A message sent in fragments comes back as the one message the server reassembled.
        foreach (var type in new[] { WebSocketMessageType.Binary, WebSocketMessageType.Text })
        {
            var message = type == WebSocketMessageType.Text ? Utf8Text(OneMiB) : Payload(OneMiB);
            for (var offset = 0; offset < message.Length; offset += 65_521)
            {
                var count = Math.Min(65_521, message.Length - offset);
                await client.SendAsync(message.AsMemory(offset, count), type, endOfMessage: offset + count == message.Length, cts.Token);
            }
            AssertEchoed(message, type, await ReceiveMessageAsync(client, cts.Token));
        }

        await client.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", cts.Token);

        Assert.Equal(WebSocketState.Closed, client.State);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, client.CloseStatus);
        Assert.Equal("done", client.CloseStatusDescription);
        var seen = await serverSawClose.Task.WaitAsync(WaitLimit);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, seen.Status);
        Assert.Equal("done", seen.Description);
        Assert.Equal(protocol, seen.Protocol);
        Assert.Empty(host.LoggedErrors);
    }

    /// <summary>
    /// The server's echo loop: reassembles each message whole, sends it back in one frame, and answers a close with
    /// the client's own status. Returns the close status it received.
    /// </summary>
    internal static async Task<(WebSocketCloseStatus? Status, string? Description)> EchoUntilCloseAsync(WebSocket socket, CancellationToken cancellationToken)
    {
        var buffer = new byte[4096];
        var length = 0;
        while (true)
        {
            if (length == buffer.Length)
            {
                Array.Resize(ref buffer, buffer.Length * 2);
            }
            var result = await socket.ReceiveAsync(buffer.AsMemory(length), cancellationToken);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                await socket.CloseOutputAsync(socket.CloseStatus ?? WebSocketCloseStatus.NormalClosure, socket.CloseStatusDescription, cancellationToken);
                return (socket.CloseStatus, socket.CloseStatusDescription);
            }
            length += result.Count;
            if (result.EndOfMessage)
            {
                await socket.SendAsync(buffer.AsMemory(0, length), result.MessageType, endOfMessage: true, cancellationToken);
                length = 0;
            }
        }
    }

    /// <summary>Receives one whole message; the message type of its first frame is the message's type.</summary>
    internal static async Task<(WebSocketMessageType Type, byte[] Message)> ReceiveMessageAsync(WebSocket socket, CancellationToken cancellationToken)
    {
        using var message = new MemoryStream();
        var buffer = new byte[16 * 1024];
        WebSocketMessageType? type = null;
        while (true)
        {
            var result = await socket.ReceiveAsync(buffer.AsMemory(), cancellationToken);
            type ??= result.MessageType;
            Assert.Equal(type, result.MessageType);
            message.Write(buffer, 0, result.Count);
            if (result.EndOfMessage)
            {
                return (type.Value, message.ToArray());
            }
        }
    }

    internal static void AssertEchoed(byte[] sent, WebSocketMessageType type, (WebSocketMessageType Type, byte[] Message) received)
    {
        Assert.Equal(type, received.Type);
        var common = sent.AsSpan().CommonPrefixLength(received.Message);
        if (common != sent.Length || received.Message.Length != sent.Length)
        {
            Assert.Fail($"{type} message differs: sent {sent.Length} bytes, got {received.Message.Length}; first difference at byte {common}.");
        }
    }

    /// <summary>Valid UTF-8 of exactly <paramref name="length"/> bytes, with 1- to 4-byte characters.</summary>
    internal static byte[] Utf8Text(int length)
    {
        const string Sample = "epoll é € 𝄞 ";
        var text = new StringBuilder(length);
        var bytes = 0;
        for (var i = 0; ; i = (i + 1) % Sample.Length)
        {
            var width = char.IsHighSurrogate(Sample[i]) ? 2 : 1;
            var piece = Sample.AsSpan(i, width);
            var size = Encoding.UTF8.GetByteCount(piece);
            if (bytes + size > length)
            {
                break;
            }
            text.Append(piece);
            bytes += size;
            i += width - 1;
        }
        text.Append('.', length - bytes);
        return Encoding.UTF8.GetBytes(text.ToString());
    }
}
