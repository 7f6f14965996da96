using System.Net.WebSockets;
using Microsoft.AspNetCore.Http.Features;

namespace WebApp;

/// <summary>
/// The sample's endpoints, written as plain <see cref="RequestDelegate"/>s: no parameter binding, no
/// request-delegate generation or reflection, so they stay trim- and AOT-safe and cost next to nothing per request.
/// </summary>
internal static class SampleEndpoints
{
    private static readonly byte[] HelloWorld = "Hello, World!"u8.ToArray();
    private static readonly JsonMessage HelloMessage = new("Hello, World!");

    // The largest message /ws echoes; a bigger one is answered with close status 1009 (message too big), so a client
    // cannot make the server buffer without bound.
    private const int MaxWebSocketMessageBytes = 4 * 1024 * 1024;

    public static IEndpointRouteBuilder MapSampleEndpoints(this IEndpointRouteBuilder endpoints, GrpcCallCounter grpcCalls)
    {
        endpoints.MapGet("/plaintext", Plaintext);
        endpoints.MapGet("/json", Json);
        endpoints.MapPost("/echo", Echo);
        // GET for HTTP/1.1 upgrades; CONNECT for WebSockets over HTTP/2 (RFC 8441).
        endpoints.MapMethods("/ws", [HttpMethods.Get, HttpMethods.Connect], WebSocketEcho);
        endpoints.MapGet("/grpc/calls", context =>
            context.Response.WriteAsJsonAsync(grpcCalls.Counts, AppJsonContext.Default.GrpcCallCounts, cancellationToken: context.RequestAborted));
        return endpoints;
    }

    private static Task Plaintext(HttpContext context)
    {
        var response = context.Response;
        response.ContentType = "text/plain";
        response.ContentLength = HelloWorld.Length;
        return response.Body.WriteAsync(HelloWorld, context.RequestAborted).AsTask();
    }

    private static Task Json(HttpContext context) =>
        context.Response.WriteAsJsonAsync(HelloMessage, AppJsonContext.Default.JsonMessage, cancellationToken: context.RequestAborted);

    private static async Task Echo(HttpContext context)
    {
        // The body is streamed, never held whole, so Kestrel's 30 MB request-body cap has nothing to protect here.
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } maxBodySize)
        {
            maxBodySize.MaxRequestBodySize = null;
        }

        var request = context.Request;
        var response = context.Response;
        response.ContentType = request.ContentType ?? "application/octet-stream";
        // The reply has exactly the request's length; saying so spares HTTP/1.1 the chunked framing.
        response.ContentLength = request.ContentLength;
        await request.BodyReader.CopyToAsync(response.BodyWriter, context.RequestAborted);
    }

    private static async Task WebSocketEcho(HttpContext context)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            return;
        }

        using var socket = await context.WebSockets.AcceptWebSocketAsync();
        try
        {
            await EchoMessagesAsync(socket, context.RequestAborted);
        }
        catch (WebSocketException e) when (e.WebSocketErrorCode == WebSocketError.ConnectionClosedPrematurely)
        {
            // The client went away without the close handshake: nothing is left to answer.
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The connection was aborted.
        }
    }

    private static async Task EchoMessagesAsync(WebSocket socket, CancellationToken cancellationToken)
    {
        var buffer = new byte[16 * 1024];
        var length = 0;
        while (true)
        {
            if (length == buffer.Length)
            {
                if (buffer.Length == MaxWebSocketMessageBytes)
                {
                    await socket.CloseAsync(WebSocketCloseStatus.MessageTooBig,
                        $"Messages are echoed up to {MaxWebSocketMessageBytes} bytes.", cancellationToken);
                    return;
                }
                Array.Resize(ref buffer, Math.Min(buffer.Length * 2, MaxWebSocketMessageBytes));
            }

            var result = await socket.ReceiveAsync(buffer.AsMemory(length), cancellationToken);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                // The client started the close handshake: answer it with the client's own status.
                await socket.CloseOutputAsync(socket.CloseStatus ?? WebSocketCloseStatus.NormalClosure,
                    socket.CloseStatusDescription, cancellationToken);
                return;
            }

            length += result.Count;
            if (result.EndOfMessage)
            {
                // The message is echoed whole, in one frame, whatever fragments it arrived in.
                await socket.SendAsync(buffer.AsMemory(0, length), result.MessageType, endOfMessage: true, cancellationToken);
                length = 0;
            }
        }
    }
}
