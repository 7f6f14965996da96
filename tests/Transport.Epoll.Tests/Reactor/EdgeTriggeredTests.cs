using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using EpollTransport.Connections;
using EpollTransport.Reactor;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace EpollTransport.Tests.Reactor;

/// <summary>
/// The traps of edge-triggered epoll: a handler that stops before EAGAIN must be served again without a new
/// edge, and one busy connection must not starve the others.
/// </summary>
public class EdgeTriggeredTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ReadingResumesAfterBackpressureWithoutANewEdge(bool inline)
    {
        const int Payload = 512 * 1024;
        await using var server = await SingleReactorServer.StartAsync(o =>
        {
            o.MaxReadBufferSize = 64 * 1024;
            o.UnsafePreferInlineScheduling = inline;
        });
        var observer = new Observer();
        server.Reactor.Observer = observer;

        var drain = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var serverReceived = server.OnConnection(async connection =>
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
                    return total;
                }
            }
        });

        using var client = await server.ConnectAsync();
        var data = new byte[Payload];
        Random.Shared.NextBytes(data);
        var sent = client.SendAsync(data, SocketFlags.None);

        await observer.ReadPaused.Task.WaitAsync(Timeout);
        // Everything is in kernel buffers now; the client sends nothing more, so no edge will come.
        Assert.Equal(Payload, await sent.WaitAsync(Timeout));
        drain.SetResult();
        Assert.Equal(Payload, await serverReceived.WaitAsync(Timeout));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task WritingResumesOnTheEpolloutEdgeAfterEagain(bool inline)
    {
        const int Payload = 16 * 1024 * 1024;
        var data = new byte[Payload];
        new Random(42).NextBytes(data);

        await using var server = await SingleReactorServer.StartAsync(o => o.UnsafePreferInlineScheduling = inline);
        var observer = new Observer();
        server.Reactor.Observer = observer;

        var served = server.OnConnection(async connection =>
        {
            for (int offset = 0; offset < Payload; offset += 64 * 1024)
            {
                await connection.Transport.Output.WriteAsync(data.AsMemory(offset, 64 * 1024));
            }
            await connection.Transport.Output.CompleteAsync();
            return 0L;
        });

        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 64 * 1024 };
        await client.ConnectAsync(server.EndPoint);

        // The client does not read until the server's sendmsg has hit EAGAIN.
        await observer.WriteBlocked.Task.WaitAsync(Timeout);

        var received = new byte[Payload + 1];
        int total = 0;
        while (true)
        {
            var n = await client.ReceiveAsync(received.AsMemory(total)).AsTask().WaitAsync(Timeout);
            if (n == 0)
            {
                break;
            }
            total += n;
        }
        Assert.Equal(Payload, total);
        Assert.True(data.AsSpan().SequenceEqual(received.AsSpan(0, total)));
        await served.WaitAsync(Timeout);
        Assert.True(server.Reactor.Counters.WriteWouldBlock > 0);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AFirehoseConnectionDoesNotStarveAnother(bool inline)
    {
        await using var server = await SingleReactorServer.StartAsync(o =>
        {
            o.UnsafePreferInlineScheduling = inline;
            o.ReadBudgetPerTurn = 16 * 1024;
        });
        var firehoseFlowing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _ = server.OnConnection(async connection =>
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
                        return total;
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
            return reply.Length;
        });

        using var firehose = await server.ConnectAsync();
        using var stop = new CancellationTokenSource(Timeout);
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

        await firehoseFlowing.Task.WaitAsync(Timeout);
        using var other = await server.ConnectAsync();
        await other.SendAsync("B ping\n"u8.ToArray());
        var buffer = new byte[64];
        int got = 0;
        while (got < 7)
        {
            var n = await other.ReceiveAsync(buffer.AsMemory(got)).AsTask().WaitAsync(Timeout);
            Assert.NotEqual(0, n);
            got += n;
        }
        Assert.Equal("B ping\n", System.Text.Encoding.ASCII.GetString(buffer, 0, got));
        // Served while the firehose was still streaming, and the ready list's budget was what made room.
        Assert.False(streaming.IsCompleted);
        Assert.True(server.Reactor.Counters.BudgetExhaustions > 0);

        stop.Cancel();
        await streaming.WaitAsync(Timeout);
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
    }

    /// <summary>One listener on one reactor, driven through the Connections API.</summary>
    private sealed class SingleReactorServer : IAsyncDisposable
    {
        private readonly WebApplication _host;
        private readonly EpollTransportFactory _factory;
        private readonly IConnectionListener _listener;
        private readonly List<Task> _handlers = new();
        private readonly Task _acceptLoop;
        private Func<ConnectionContext, Task<long>>? _handler;

        private SingleReactorServer(WebApplication host, EpollTransportFactory factory, IConnectionListener listener)
        {
            _host = host;
            _factory = factory;
            _listener = listener;
            _acceptLoop = AcceptLoopAsync();
        }

        public EndPoint EndPoint => _listener.EndPoint;

        public EpollReactor Reactor => _factory.Reactors.Current.Single();

        public static async Task<SingleReactorServer> StartAsync(Action<EpollTransportOptions> configure)
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseEpollTransport(o =>
            {
                o.ReactorCount = 1;
                configure(o);
            });
            var host = builder.Build();
            var factory = host.Services.GetServices<IConnectionListenerFactory>().OfType<EpollTransportFactory>().Single();
            var listener = await factory.BindAsync(new IPEndPoint(IPAddress.Loopback, 0));
            return new SingleReactorServer(host, factory, listener);
        }

        /// <summary>Handles every accepted connection with <paramref name="handler"/>; completes with the first one's result.</summary>
        public Task<long> OnConnection(Func<ConnectionContext, Task<long>> handler)
        {
            var first = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
            _handler = async connection =>
            {
                try
                {
                    var result = await handler(connection);
                    first.TrySetResult(result);
                    return result;
                }
                catch (Exception ex)
                {
                    first.TrySetException(ex);
                    throw;
                }
            };
            return first.Task;
        }

        public async Task<Socket> ConnectAsync()
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await socket.ConnectAsync(EndPoint);
            return socket;
        }

        private async Task AcceptLoopAsync()
        {
            while (await _listener.AcceptAsync() is { } connection)
            {
                _handlers.Add(HandleAsync(connection));
            }
        }

        private async Task HandleAsync(ConnectionContext connection)
        {
            await Task.Yield();
            try
            {
                if (_handler is { } handler)
                {
                    await handler(connection);
                }
            }
            catch (Exception)
            {
                // The test that owns the handler observes its failure through OnConnection's task.
            }
            finally
            {
                await connection.DisposeAsync();
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _listener.UnbindAsync();
            await _acceptLoop.WaitAsync(Timeout);
            foreach (var handler in _handlers)
            {
                await handler.WaitAsync(Timeout);
            }
            await _listener.DisposeAsync();
            await _factory.DisposeAsync();
            await _host.DisposeAsync();
        }
    }
}
