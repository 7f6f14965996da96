using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using EpollTransport.Connections;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace EpollTransport.Tests.Transport;

/// <summary>
/// New connections while one reactor is held: two reactors, inline scheduling, and a request whose handler blocks
/// its reactor until the test releases it (or <see cref="BlockFor"/> passes). Meanwhile <see cref="NewConnections"/>
/// new connections send one request each. With <see cref="EpollAcceptMode.ReusePort"/> the kernel hashes about half
/// of them to the held reactor's socket, where they wait for the block to end; with <see cref="EpollAcceptMode.Shared"/>
/// the kernel wakes the free reactor, which accepts and answers every one of them while the other is still held.
/// Whether a response came before the release is an order of events, not a timing; the latencies are written to the
/// test output, not asserted.
/// </summary>
public sealed class AcceptBalancingTests(ITestOutputHelper output)
{
    private const int NewConnections = 200;

    /// <summary>How long the blocking request holds its reactor unless the test releases it earlier.</summary>
    private static readonly TimeSpan BlockFor = TimeSpan.FromSeconds(2);

    [Theory]
    [InlineData(EpollAcceptMode.Shared)]
    [InlineData(EpollAcceptMode.ReusePort)]
    public async Task NewConnectionsWhileOneReactorIsHeld(EpollAcceptMode mode)
    {
        using var cts = new CancellationTokenSource(LongWaitLimit);
        var blocked = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var release = new ManualResetEventSlim();
        long releasedAt = 0;

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseEpollTransport(o =>
        {
            o.ReactorCount = 2;
            o.UnsafePreferInlineScheduling = true;
            o.AcceptMode = mode;
        });
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        await using var app = builder.Build();
        app.MapGet("/block", async (HttpContext context) =>
        {
            // Holds the connection's reactor, as a blocking app under inline scheduling does. Run there through its work
            // queue: the request itself may run on a pool thread (when its bytes came before Kestrel awaited them).
            var reactor = ((EpollConnection)context.Features.Get<IEpollFileRegionFeature>()!).Reactor;
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            reactor.Schedule(_ =>
            {
                blocked.TrySetResult(Thread.CurrentThread.Name ?? "");
                release.Wait(BlockFor);
                Volatile.Write(ref releasedAt, Stopwatch.GetTimestamp());
                done.SetResult();
            }, null);
            await done.Task;
            return Results.Bytes("released"u8.ToArray(), "text/plain");
        });
        // The reactor that owns the connection (not the thread: a connection's first request may run on the pool).
        app.MapGet("/", (HttpContext context) => Results.Bytes(
            Encoding.ASCII.GetBytes($"epoll-reactor-{((EpollConnection)context.Features.Get<IEpollFileRegionFeature>()!).Reactor.Id}"), "text/plain"));
        await app.StartAsync(cts.Token);
        var baseAddress = new Uri(app.Urls.First());

        using var holder = await RawHttpClient.ConnectAsync(baseAddress, cts.Token);
        var holderReactor = Encoding.ASCII.GetString((await holder.GetAsync("/", cts.Token)).Body);
        await holder.SendAsync("GET /block HTTP/1.1\r\nHost: test\r\n\r\n", cts.Token);
        var heldReactor = await blocked.Task.WaitAsync(WaitLimit);
        Assert.Equal(holderReactor, heldReactor);

        var answers = await Task.WhenAll(Enumerable.Range(0, NewConnections).Select(async _ =>
        {
            var started = Stopwatch.GetTimestamp();
            using var client = await RawHttpClient.ConnectAsync(baseAddress, cts.Token);
            var response = await client.GetAsync("/", cts.Token);
            Assert.Equal(200, response.StatusCode);
            return (At: Stopwatch.GetTimestamp(), Elapsed: Stopwatch.GetElapsedTime(started), Thread: Encoding.ASCII.GetString(response.Body));
        })).WaitAsync(LongWaitLimit);
        release.Set();
        var held = await holder.ReadResponseAsync(cts.Token).WaitAsync(WaitLimit);
        Assert.Equal(200, held.StatusCode);

        var end = Volatile.Read(ref releasedAt);
        var beforeRelease = answers.Count(a => a.At < end);
        var onHeld = answers.Count(a => a.Thread == heldReactor);
        var within100Ms = answers.Count(a => a.Elapsed <= TimeSpan.FromMilliseconds(100));
        var sorted = answers.Select(a => a.Elapsed.TotalMilliseconds).Order().ToArray();
        output.WriteLine($"{mode}: {beforeRelease} of {NewConnections} answered while {heldReactor} was held, {onHeld} answered on it; " +
            $"{within100Ms} within 100 ms; latency p50 {sorted[sorted.Length / 2]:0.0} ms, p99 {sorted[(int)(sorted.Length * 0.99)]:0.0} ms, max {sorted[^1]:0.0} ms");

        if (mode == EpollAcceptMode.Shared)
        {
            // The free reactor took every new connection; none waited for the held one.
            Assert.Equal(NewConnections, beforeRelease);
            Assert.Equal(0, onHeld);
        }
        else
        {
            // The hash sends some to each socket (all 200 to one: probability 2^-199): those on the held reactor's
            // wait for the block to end.
            Assert.InRange(beforeRelease, 1, NewConnections - 1);
            Assert.Equal(NewConnections - beforeRelease, onHeld);
        }
        await app.StopAsync(cts.Token);
    }

    /// <summary>
    /// Connections opened one after another while both reactors are free alternate between them. The kernel wakes the
    /// same idle reactor first each time (the first in the socket's wait queue), so without the least-loaded hand-off
    /// every connection would stay on it.
    /// </summary>
    [Fact]
    public async Task ConnectionsOpenedOneByOneSpreadOverFreeReactors()
    {
        const int Connections = 20;
        using var cts = new CancellationTokenSource(WaitLimit);
        await using var server = await TransportServer.StartEchoAsync(new IPEndPoint(IPAddress.Loopback, 0), TransportHarness.Configure(2, false));
        var clients = new List<Socket>();
        try
        {
            for (int i = 0; i < Connections; i++)
            {
                var client = await TransportHarness.ConnectAsync(server.EndPoint, cts.Token);
                clients.Add(client);
                // Served before the next connects: both reactors are back in epoll_wait (or past one) by then.
                await TransportHarness.AssertEchoesAsync(client, Encoding.ASCII.GetBytes($"connection {i}"), cts.Token);
            }
            var perReactor = server.Connections.GroupBy(c => ((EpollConnection)c.Context).Reactor.Id).Select(g => g.Count()).ToArray();
            output.WriteLine($"connections per reactor: {string.Join(", ", perReactor)}");
            Assert.Equal(2, perReactor.Length);
            Assert.InRange(Math.Abs(perReactor[0] - perReactor[1]), 0, 2);
        }
        finally
        {
            foreach (var client in clients)
            {
                client.Dispose();
            }
        }
    }
}
