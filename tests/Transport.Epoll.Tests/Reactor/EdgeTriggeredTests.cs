using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using EpollTransport.Reactor;
using EpollTransport.Tests.Transport;
using Microsoft.AspNetCore.Connections;
using static EpollTransport.Tests.Transport.TransportHarness;

namespace EpollTransport.Tests.Reactor;

/// <summary>
/// The traps of edge-triggered epoll: a handler that stops before EAGAIN must be served again without a new
/// edge, and one busy connection must not starve the others.
/// </summary>
public class EdgeTriggeredTests
{

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ReadingResumesAfterBackpressureWithoutANewEdge(bool inline)
    {
        const int Payload = 512 * 1024;
        var drain = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var serverReceived = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await StartSingleReactorAsync(async connection =>
        {
            // Read nothing until told to: the transport must stop at MaxReadBufferSize, with bytes still in the socket.
            await drain.Task;
            long total = 0;
            while (true)
            {
                var result = await connection.Transport.Input.ReadAsync();
                total += result.Buffer.Length;
                connection.Transport.Input.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted || total >= Payload)
                {
                    serverReceived.SetResult(total);
                    return;
                }
            }
        }, o =>
        {
            o.MaxReadBufferSize = 64 * 1024;
            o.UnsafePreferInlineScheduling = inline;
        });
        var observer = new Observer();
        ReactorOf(server).Observer = observer;

        using var client = await ConnectAsync(server.EndPoint, CancellationToken.None);
        var data = new byte[Payload];
        Random.Shared.NextBytes(data);
        var sent = client.SendAsync(data, SocketFlags.None);

        await observer.ReadPaused.Task.WaitAsync(LongWaitLimit);
        Assert.Equal(1, ReactorOf(server).Counters.PausedConnections);
        // Everything is in kernel buffers now; the client sends nothing more, so no edge will come.
        Assert.Equal(Payload, await sent.WaitAsync(LongWaitLimit));
        drain.SetResult();
        Assert.Equal(Payload, await serverReceived.Task.WaitAsync(LongWaitLimit));
        // Reading resumed before the last bytes could arrive: the gauge went back down on the way.
        Assert.Equal(0, ReactorOf(server).Counters.PausedConnections);
    }

    [Theory]
    [InlineData(false, EpollSendMode.Auto)]
    [InlineData(true, EpollSendMode.Auto)]
    [InlineData(false, EpollSendMode.Reactor)]
    [InlineData(false, EpollSendMode.WriteThrough)]
    public async Task WritingResumesOnTheEpolloutEdgeAfterEagain(bool inline, EpollSendMode sendMode)
    {
        const int Payload = 16 * 1024 * 1024;
        var data = new byte[Payload];
        new Random(42).NextBytes(data);

        await using var server = await StartSingleReactorAsync(async connection =>
        {
            for (int offset = 0; offset < Payload; offset += 64 * 1024)
            {
                await connection.Transport.Output.WriteAsync(data.AsMemory(offset, 64 * 1024));
            }
            await connection.Transport.Output.CompleteAsync();
        }, o =>
        {
            o.UnsafePreferInlineScheduling = inline;
            o.SendMode = sendMode;
        });
        var observer = new Observer();
        ReactorOf(server).Observer = observer;

        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 64 * 1024 };
        await client.ConnectAsync(server.EndPoint);

        // The client does not read until the server's sendmsg has hit EAGAIN.
        await observer.WriteBlocked.Task.WaitAsync(LongWaitLimit);

        var received = new byte[Payload + 1];
        int total = 0;
        while (true)
        {
            var n = await client.ReceiveAsync(received.AsMemory(total)).AsTask().WaitAsync(LongWaitLimit);
            if (n == 0)
            {
                break;
            }
            total += n;
        }
        Assert.Equal(Payload, total);
        Assert.True(data.AsSpan().SequenceEqual(received.AsSpan(0, total)));
        await server.HandlersCompleted();
        Assert.True(ReactorOf(server).Counters.WriteWouldBlock > 0);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AFirehoseConnectionDoesNotStarveAnother(bool inline)
    {
        var firehoseFlowing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await StartSingleReactorAsync(async connection =>
        {
            var input = connection.Transport.Input;
            var first = await input.ReadAsync();
            var kind = first.Buffer.FirstSpan[0];
            if (kind == (byte)'A')
            {
                // Sink: swallow everything as fast as it comes.
                long total = first.Buffer.Length;
                input.AdvanceTo(first.Buffer.End);
                while (true)
                {
                    var result = await input.ReadAsync();
                    total += result.Buffer.Length;
                    input.AdvanceTo(result.Buffer.End);
                    if (total > 8 * 1024 * 1024)
                    {
                        firehoseFlowing.TrySetResult();
                    }
                    if (result.IsCompleted)
                    {
                        return;
                    }
                }
            }

            // Echo one line.
            var line = first.Buffer;
            while (line.PositionOf((byte)'\n') is null)
            {
                input.AdvanceTo(line.Start, line.End);
                line = (await input.ReadAsync()).Buffer;
            }
            var reply = line.ToArray();
            input.AdvanceTo(line.End);
            await connection.Transport.Output.WriteAsync(reply);
        }, o =>
        {
            o.UnsafePreferInlineScheduling = inline;
            o.ReadBudgetPerTurn = 16 * 1024;
        });

        using var firehose = await ConnectAsync(server.EndPoint, CancellationToken.None);
        using var stop = new CancellationTokenSource(LongWaitLimit);
        var chunk = new byte[256 * 1024];
        chunk[0] = (byte)'A';
        var streaming = Task.Run(async () =>
        {
            long sent = 0;
            while (!stop.IsCancellationRequested && sent < 64L * 1024 * 1024 * 1024)
            {
                try
                {
                    sent += await firehose.SendAsync(chunk, stop.Token);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
            return sent;
        });

        await firehoseFlowing.Task.WaitAsync(LongWaitLimit);
        using var other = await ConnectAsync(server.EndPoint, CancellationToken.None);
        await other.SendAsync("B ping\n"u8.ToArray());
        var buffer = new byte[64];
        int got = 0;
        while (got < 7)
        {
            var n = await other.ReceiveAsync(buffer.AsMemory(got)).AsTask().WaitAsync(LongWaitLimit);
            Assert.NotEqual(0, n);
            got += n;
        }
        Assert.Equal("B ping\n", System.Text.Encoding.ASCII.GetString(buffer, 0, got));
        // Served while the firehose was still streaming, and the ready list's budget was what made room.
        Assert.False(streaming.IsCompleted);
        Assert.True(ReactorOf(server).Counters.BudgetExhaustions > 0);

        stop.Cancel();
        await streaming.WaitAsync(LongWaitLimit);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task NoReadBurstEndsWithAnEagainRecv(bool unixSocket)
    {
        const int RoundTrips = 50;
        var path = unixSocket ? UniqueUnixSocketPath() : null;
        EndPoint endPoint = path is null ? new IPEndPoint(IPAddress.Loopback, 0) : new UnixDomainSocketEndPoint(path);
        await using var server = await TransportServer.StartAsync(endPoint, EchoAsync, o => o.ReactorCount = 1);
        using var cts = new CancellationTokenSource(LongWaitLimit);
        using (var client = await ConnectAsync(server.EndPoint, cts.Token))
        {
            // One small message at a time, each answered before the next: every request is one edge and one segment.
            var message = new byte[100];
            for (int i = 0; i < RoundTrips; i++)
            {
                Random.Shared.NextBytes(message);
                await AssertEchoesAsync(client, message, cts.Token);
            }
        }

        var counters = ReactorOf(server).Counters;
        if (unixSocket)
        {
            // No TCP_INQ on a Unix socket, but a receive shorter than its buffer found the queue empty.
            Assert.Equal(0, counters.ReadQueueDrained);
            Assert.True(counters.ReadShortDrained >= RoundTrips, $"Short reads: {counters.ReadShortDrained}");
            Assert.Equal(0, counters.ReadWouldBlock);
        }
        else
        {
            // TCP_INQ: the recv that took the message also said the queue was empty, so none ended in EAGAIN.
            Assert.True(counters.ReadQueueDrained >= RoundTrips, $"Drained reads: {counters.ReadQueueDrained}");
            Assert.Equal(0, counters.ReadWouldBlock);
        }
    }

    private sealed class Observer : IReactorObserver
    {
        public TaskCompletionSource ReadPaused { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource WriteBlocked { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void OnBudgetExhausted(IEpollHandler handler)
        {
        }

        public void OnReadPaused(IEpollHandler handler) => ReadPaused.TrySetResult();

        public void OnWriteWouldBlock(IEpollHandler handler) => WriteBlocked.TrySetResult();

        public bool RefusesRegistration(IEpollHandler handler, int fd) => false;
    }

    private static Task<TransportServer> StartSingleReactorAsync(Func<ConnectionContext, Task> handler, Action<EpollTransportOptions> configure)
        => TransportServer.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), handler, o =>
        {
            o.ReactorCount = 1;
            configure(o);
        });

    private static EpollReactor ReactorOf(TransportServer server) => server.Factory.Reactors.Current.Single();
}
