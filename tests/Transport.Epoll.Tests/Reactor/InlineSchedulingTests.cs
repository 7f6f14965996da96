using System.Net.Sockets;
using EpollTransport.Reactor;
using EpollTransport.Tests.Transport;
using static EpollTransport.Tests.Transport.TransportHarness;

namespace EpollTransport.Tests.Reactor;

/// <summary>
/// With inline scheduling a turn runs in stages: the receives of every ready connection, then the application
/// for each of them (through the reactor's work queue), then the sends.
/// </summary>
public class InlineSchedulingTests
{
    [Fact]
    public async Task TheApplicationRunsOnTheReactorAfterEveryReceiveOfItsTurn()
    {
        EpollReactor? reactor = null;
        long receivesBefore = 0;
        var reading = new[] { NewSignal(), NewSignal() };
        var receivesSeen = new TaskCompletionSource<(long Receives, string? Thread)>(TaskCreationOptions.RunContinuationsAsynchronously);
        int accepted = -1;
        await using var server = await TransportServer.StartAsync(new UnixDomainSocketEndPoint(UniqueUnixSocketPath()), async connection =>
        {
            var input = connection.Transport.Input;
            var read = input.ReadAsync();
            Assert.False(read.IsCompleted);
            reading[Interlocked.Increment(ref accepted)].SetResult();
            var result = await read;
            // Receives finished on this reactor since the stall, the one that fed this read included.
            receivesSeen.TrySetResult((Receives(reactor!) - receivesBefore, Thread.CurrentThread.Name));
            input.AdvanceTo(result.Buffer.End);
        }, o =>
        {
            o.ReactorCount = 1;
            o.UnsafePreferInlineScheduling = true;
        });
        reactor = server.Factory.Reactors.Current.Single();

        using var first = await ConnectAsync(server.EndPoint, CancellationToken.None);
        using var second = await ConnectAsync(server.EndPoint, CancellationToken.None);
        await Task.WhenAll(reading.Select(r => r.Task)).WaitAsync(WaitLimit);

        // Hold the loop while both clients write, so that one epoll_wait reports both connections.
        using var gate = new ManualResetEventSlim();
        var stalled = NewSignal();
        reactor.Schedule(_ =>
        {
            receivesBefore = Receives(reactor);
            stalled.SetResult();
            gate.Wait(WaitLimit);
        }, null);
        await stalled.Task.WaitAsync(WaitLimit);
        await first.SendAsync(new byte[] { 1 }, SocketFlags.None);
        await second.SendAsync(new byte[] { 2 }, SocketFlags.None);
        gate.Set();

        var (receives, thread) = await receivesSeen.Task.WaitAsync(WaitLimit);
        Assert.Equal("epoll-reactor-0", thread);
        // Inside the first receive's flush only one receive would have finished.
        Assert.Equal(2, receives);
        await server.HandlersCompleted();
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Receives that ended because the socket had nothing more (Unix sockets end with EAGAIN).</summary>
    /// <summary>Read bursts ended: by EAGAIN, by TCP_INQ's word, or (Unix stream sockets) by a short receive.</summary>
    private static long Receives(EpollReactor reactor)
        => reactor.Counters.ReadWouldBlock + reactor.Counters.ReadQueueDrained + reactor.Counters.ReadShortDrained;
}
