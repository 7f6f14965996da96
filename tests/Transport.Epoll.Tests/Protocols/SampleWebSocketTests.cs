using System.Net;
using System.Net.WebSockets;

namespace EpollTransport.Tests.Protocols;

/// <summary>
/// The sample's <c>/ws</c> endpoint, on the sample itself (copied next to the tests, run as a child process on
/// the epoll transport as the fault tests run it): messages echoed whole, the close handshake answered, a message
/// over its cap refused.
/// </summary>
public sealed class SampleWebSocketTests
{

    [Fact]
    public async Task SampleEchoesWebSocketMessagesAndAnswersTheClose()
    {
        using var server = new SampleProcess();
        var port = await server.ListeningPort.WaitAsync(WaitLimit);
        using var cts = new CancellationTokenSource(WaitLimit);
        using var client = new ClientWebSocket();

        await client.ConnectAsync(new Uri($"ws://127.0.0.1:{port}/ws"), cts.Token);

        foreach (var size in new[] { 0, 5, 65_536, 1024 * 1024 })
        {
            var binary = WebSocketTests.Payload(size);
            await client.SendAsync(binary, WebSocketMessageType.Binary, endOfMessage: true, cts.Token);
            WebSocketTests.AssertEchoed(binary, WebSocketMessageType.Binary, await WebSocketTests.ReceiveMessageAsync(client, cts.Token));

            var text = WebSocketTests.Utf8Text(size);
            await client.SendAsync(text, WebSocketMessageType.Text, endOfMessage: true, cts.Token);
            WebSocketTests.AssertEchoed(text, WebSocketMessageType.Text, await WebSocketTests.ReceiveMessageAsync(client, cts.Token));
        }

        // Sent in three fragments, echoed as one message.
        var fragmented = WebSocketTests.Payload(200_003);
        await client.SendAsync(fragmented.AsMemory(0, 100_000), WebSocketMessageType.Binary, endOfMessage: false, cts.Token);
        await client.SendAsync(fragmented.AsMemory(100_000, 100_000), WebSocketMessageType.Binary, endOfMessage: false, cts.Token);
        await client.SendAsync(fragmented.AsMemory(200_000), WebSocketMessageType.Binary, endOfMessage: true, cts.Token);
        WebSocketTests.AssertEchoed(fragmented, WebSocketMessageType.Binary, await WebSocketTests.ReceiveMessageAsync(client, cts.Token));

        await client.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", cts.Token);

        Assert.Equal(WebSocketState.Closed, client.State);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, client.CloseStatus);
        Assert.Equal("bye", client.CloseStatusDescription);

        // A message over the sample's 4 MiB cap is not buffered whole: the sample closes with 1009.
        using var tooBig = new ClientWebSocket();
        await tooBig.ConnectAsync(new Uri($"ws://127.0.0.1:{port}/ws"), cts.Token);
        await tooBig.SendAsync(new byte[4 * 1024 * 1024 + 1], WebSocketMessageType.Binary, endOfMessage: true, cts.Token);
        var refusal = await tooBig.ReceiveAsync(new byte[16], cts.Token);
        Assert.Equal(WebSocketMessageType.Close, refusal.MessageType);
        Assert.Equal(WebSocketCloseStatus.MessageTooBig, tooBig.CloseStatus);
        await tooBig.CloseOutputAsync(WebSocketCloseStatus.MessageTooBig, null, cts.Token);
        Assert.Equal(WebSocketState.Closed, tooBig.State);

        // Not a WebSocket request: refused, and the server is still up.
        using var http = new HttpClient { Timeout = WaitLimit };
        using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{port}/ws")).WaitAsync(WaitLimit);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.False(server.HasExited, "The sample exited.");
    }

    /// <summary>The sample on the epoll transport, on an ephemeral port read from its startup log.</summary>
}
