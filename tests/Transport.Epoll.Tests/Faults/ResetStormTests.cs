using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Xunit.Abstractions;

namespace EpollTransport.Tests.Faults;

/// <summary>
/// Many clients that reset (RST) their connections at several stages of an exchange, while other clients are
/// served: nothing of the reset connections may stay behind, in Kestrel or in the transport.
/// </summary>
/// <remarks>
/// Every reset here reaches a connection whose bytes the server has already read; a reset behind unread request
/// bytes, the case that once left epoll connections open, has its own test (<see cref="ResetWithUnreadRequestBytesTests"/>).
/// </remarks>
public sealed class ResetStormTests(ITestOutputHelper output)
{
    private const int StormClients = 200;
    private const int HealthyClients = 4;
    private const int StormDownloadSize = 4 * 1024 * 1024;
    private const int HealthyDownloadSize = 100_003;

    public static TheoryData<string> Transports => KestrelHost.Transports;

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task ResetStormLeavesNoConnectionBehindWhileOtherClientsGetWholeResponses(string transport)
    {
        var handlersStarted = 0;
        var handlersFinished = 0;
        var handlerFailures = new List<string>();
        var uploads = new PortSignals();
        await using var server = await FaultServer.StartAsync(transport, app =>
        {
            FaultServer.MapOk(app);
            app.MapGet("/bytes/{length:int}", async context =>
            {
                Interlocked.Increment(ref handlersStarted);
                try
                {
                    var length = int.Parse((string)context.Request.RouteValues["length"]!, CultureInfo.InvariantCulture);
                    context.Response.ContentLength = length;
                    var body = Pattern(length);
                    for (var offset = 0; offset < length && !context.RequestAborted.IsCancellationRequested; offset += 16 * 1024)
                    {
                        await context.Response.Body.WriteAsync(body.AsMemory(offset, Math.Min(16 * 1024, length - offset)), context.RequestAborted);
                    }
                }
                catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
                {
                    // The client reset: Kestrel's contract is RequestAborted.
                }
                catch (Exception e)
                {
                    lock (handlerFailures)
                    {
                        handlerFailures.Add(e.ToString());
                    }
                }
                finally
                {
                    Interlocked.Increment(ref handlersFinished);
                }
            });
            app.MapPost("/upload", async context =>
            {
                Interlocked.Increment(ref handlersStarted);
                try
                {
                    // The client says how much it sends before it resets; it resets once all of that is read.
                    var announced = long.Parse(context.Request.Headers["X-Sent"].ToString(), CultureInfo.InvariantCulture);
                    var buffer = new byte[16 * 1024];
                    long read = 0;
                    var signalled = false;
                    while (true)
                    {
                        // Without RequestAborted: Kestrel's own reaction to a body read cancelled by it is not what
                        // is tested here.
                        var n = await context.Request.Body.ReadAsync(buffer);
                        if (n == 0)
                        {
                            lock (handlerFailures)
                            {
                                handlerFailures.Add($"/upload: the body ended after {read} bytes without an error.");
                            }
                            break;
                        }
                        read += n;
                        if (read >= announced && !signalled)
                        {
                            signalled = true;
                            uploads.Signal(context.Connection.RemotePort);
                        }
                    }
                }
                catch (IOException)
                {
                    // The body ended with the reset (ConnectionResetException).
                }
                finally
                {
                    Interlocked.Increment(ref handlersFinished);
                }
            });
        }, output);
        using var cts = new CancellationTokenSource(WaitLimit * 2);

        var stormDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var healthyRequests = 0;
        async Task HealthyClientAsync(int index)
        {
            using var client = await RawHttpClient.ConnectAsync(server.BaseAddress, cts.Token);
            var expected = Pattern(HealthyDownloadSize);
            // Until the storm is over, but at least 3 exchanges and at most 10,000.
            for (var i = 0; i < 10_000 && (i < 3 || !stormDone.Task.IsCompleted); i++)
            {
                var response = await client.GetAsync($"/bytes/{HealthyDownloadSize}", cts.Token);
                Assert.Equal(200, response.StatusCode);
                Assert.True(expected.AsSpan().SequenceEqual(response.Body), $"Healthy client {index} got a damaged body in exchange {i}.");
                Interlocked.Increment(ref healthyRequests);
            }
        }

        async Task StormClientAsync(int index)
        {
            var client = await RawHttpClient.ConnectAsync(server.BaseAddress, cts.Token);
            try
            {
                var seen = server.Connections.SeenAsync(client.LocalPort);
                switch (index % 3)
                {
                    case 0:
                        // Reset before sending anything, once Kestrel has the connection: the reset reaches a live
                        // connection, not the backlog.
                        await seen.WaitAsync(cts.Token);
                        break;
                    case 1:
                        // Reset in the middle of a large response, while the server writes.
                        await client.SendAsync($"GET /bytes/{StormDownloadSize} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", cts.Token);
                        Assert.Equal(200, (await client.ReadHeadAsync(cts.Token)).StatusCode);
                        await client.DiscardAsync(index * 257 % 65_536, cts.Token);
                        break;
                    default:
                        // Reset in the middle of the request body, once the app has read what was sent.
                        var sent = 1 + index * 331 % 65_536;
                        var uploaded = uploads.WaitAsync(client.LocalPort);
                        await client.SendAsync($"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1048576\r\nX-Sent: {sent}\r\n\r\n", cts.Token);
                        await client.SendAsync(new byte[sent], cts.Token);
                        await uploaded.WaitAsync(cts.Token);
                        break;
                }
            }
            finally
            {
                client.Reset();
            }
        }

        var healthy = Enumerable.Range(0, HealthyClients).Select(HealthyClientAsync).ToArray();
        await Task.WhenAll(Enumerable.Range(0, StormClients).Select(StormClientAsync)).WaitAsync(cts.Token);
        stormDone.SetResult();
        await Task.WhenAll(healthy).WaitAsync(cts.Token);

        // The server still serves a new connection.
        using (var after = await RawHttpClient.ConnectAsync(server.BaseAddress, cts.Token))
        {
            await FaultServer.AssertOkAsync(after, "after-storm", cts.Token);
        }

        // No connection is left: every one Kestrel took (storm, healthy and the last) has ended, and none is left in
        // the transport.
        await server.AssertAllConnectionsGoneAsync(total: StormClients + HealthyClients + 1);

        Assert.Equal(Volatile.Read(ref handlersStarted), Volatile.Read(ref handlersFinished));
        Assert.Empty(handlerFailures);
        Assert.Empty(server.UnexpectedErrors);
        output.WriteLine($"[{transport}] {Volatile.Read(ref healthyRequests)} healthy exchanges during the storm; {handlersStarted} handlers ran.");
    }

    internal static byte[] Pattern(int length)
    {
        var bytes = new byte[length];
        for (var i = 0; i < length; i++)
        {
            bytes[i] = (byte)(i * 31 + (i >> 8));
        }
        return bytes;
    }
}
