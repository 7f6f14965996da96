using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Xunit.Abstractions;

namespace EpollTransport.Tests.Faults;

/// <summary>
/// Slowloris: clients that trickle their request headers to hold connections forever. Kestrel's
/// <c>RequestHeadersTimeout</c> must cut them however they trickle, and on the epoll transport as on Sockets.
/// </summary>
public sealed class SlowlorisTests(ITestOutputHelper output)
{
    private const int SlowClients = 8;

    // The test's pace: one byte per slow client per step. Kestrel checks its timeouts once a second, so with a
    // 1 s RequestHeadersTimeout the cut comes after a few dozen steps; the step count bounds the test at 30 s.
    private static readonly TimeSpan s_pace = TimeSpan.FromMilliseconds(50);
    private const int MaxSteps = 600;

    public static TheoryData<string> Transports => KestrelHost.Transports;

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task HeadersSentOneByteAtATimeAreCutByTheHeadersTimeoutWhileAnotherClientIsServed(string transport)
    {
        var slowRequestsServed = 0;
        await using var server = await FaultServer.StartAsync(transport, app =>
        {
            FaultServer.MapOk(app);
            app.MapGet("/slow", context =>
            {
                Interlocked.Increment(ref slowRequestsServed);
                return FaultServer.WriteTextAsync(context.Response, "served");
            });
        }, output, limits => limits.RequestHeadersTimeout = TimeSpan.FromSeconds(1));
        using var cts = new CancellationTokenSource(WaitLimit * 2);

        // A header section that never ends: MaxSteps bytes of it stay below Kestrel's 32 KiB header limit, so only
        // the timeout can end it.
        var trickle = Encoding.ASCII.GetBytes("GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + new string('a', MaxSteps));
        using var healthy = await RawHttpClient.ConnectAsync(server.BaseAddress, cts.Token);
        var slow = new RawHttpClient[SlowClients];
        var closed = new Task<(byte[] Received, bool Reset)>[SlowClients];
        try
        {
            for (var i = 0; i < SlowClients; i++)
            {
                slow[i] = await RawHttpClient.ConnectAsync(server.BaseAddress, cts.Token);
                // Pending from the start: completes when the server answers and closes.
                closed[i] = slow[i].ReadToEndAsync(cts.Token);
            }
            var allClosed = Task.WhenAll(closed);

            int step;
            for (step = 0; step < MaxSteps && !allClosed.IsCompleted; step++)
            {
                for (var i = 0; i < SlowClients; i++)
                {
                    if (closed[i].IsCompleted)
                    {
                        continue;
                    }
                    try
                    {
                        await slow[i].SendAsync(trickle.AsMemory(step, 1), cts.Token);
                    }
                    catch (SocketException)
                    {
                        // The server closed it between the check and the send: the read below sees that too.
                    }
                }

                // Meanwhile another client is served on its keep-alive connection.
                await FaultServer.AssertOkAsync(healthy, step.ToString(CultureInfo.InvariantCulture), cts.Token);

                await Task.WhenAny(allClosed, Task.Delay(s_pace, cts.Token));
            }

            Assert.True(allClosed.IsCompleted, $"Slow clients still open after {step} bytes each.");
            output.WriteLine($"[{transport}] all {SlowClients} slow clients were cut after {step} bytes each.");
            foreach (var (received, _) in await allClosed)
            {
                // Kestrel answers a request-headers timeout with 408 and closes: by FIN, or by RST when a byte of the
                // trickle arrived after it stopped reading (the 408 is read first either way).
                Assert.Equal(408, RawHttpClient.StatusOf(received));
            }
            Assert.Equal(0, Volatile.Read(ref slowRequestsServed));

            // The healthy connection outlived them all.
            await FaultServer.AssertOkAsync(healthy, "after", cts.Token);
            Assert.Empty(server.Host.LoggedErrors);

            // The connections the server cut are gone from Kestrel and from the transport; so is the healthy one once
            // its client closes it.
            healthy.Dispose();
            await server.AssertAllConnectionsGoneAsync(total: SlowClients + 1);
        }
        finally
        {
            foreach (var client in slow)
            {
                client?.Dispose();
            }
        }
    }
}
