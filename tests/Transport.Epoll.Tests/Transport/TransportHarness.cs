using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace EpollTransport.Tests.Transport;

/// <summary>
/// Shared pieces of the Connections-API tests: a factory built from Kestrel's own services, a server that runs an
/// accept loop over an <see cref="IConnectionListener"/>, and blocking-free client helpers with timeouts.
/// </summary>
internal static class TransportHarness
{
    /// <summary>
    /// A WebApplication that is built but never started, kept for the whole test run: it provides Kestrel's
    /// <see cref="IMemoryPoolFactory{T}"/> (and proves that <c>UseEpollTransport</c> registers the factory).
    /// Built once so that its own resources (configuration file watchers) exist before any fd is counted.
    /// </summary>
    private static readonly Lazy<WebApplication> s_host = new(() =>
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseEpollTransport(o => o.ReactorCount = 1);
        return builder.Build();
    });

    public static IServiceProvider HostServices => s_host.Value.Services;

    /// <summary>A fresh factory with its own reactors; the caller disposes it.</summary>
    public static EpollTransportFactory CreateFactory(Action<EpollTransportOptions>? configure = null)
    {
        var options = new EpollTransportOptions();
        configure?.Invoke(options);
        var memoryPoolFactory = HostServices.GetRequiredService<IMemoryPoolFactory<byte>>();
        return new EpollTransportFactory(Options.Create(options), NullLoggerFactory.Instance, memoryPoolFactory);
    }

    public static Action<EpollTransportOptions> Configure(int reactorCount, bool inline)
        => o =>
        {
            o.ReactorCount = reactorCount;
            o.UnsafePreferInlineScheduling = inline;
        };

    /// <summary>ReactorCount × UnsafePreferInlineScheduling.</summary>
    public static TheoryData<int, bool> Configs => new()
    {
        { 1, false },
        { 1, true },
        { 2, false },
        { 2, true },
    };

    /// <summary>
    /// Echoes the input until it completes (or the output is completed by the peer), then completes both sides.
    /// </summary>
    public static async Task EchoAsync(ConnectionContext connection)
    {
        var input = connection.Transport.Input;
        var output = connection.Transport.Output;
        while (true)
        {
            var result = await input.ReadAsync();
            var buffer = result.Buffer;
            // Read everything about the buffer before AdvanceTo: its segments go back to the pipe after it.
            var received = !buffer.IsEmpty;
            foreach (var segment in buffer)
            {
                output.Write(segment.Span);
            }
            input.AdvanceTo(buffer.End);
            if (received)
            {
                var flush = await output.FlushAsync();
                if (flush.IsCompleted)
                {
                    break;
                }
            }
            if (result.IsCompleted)
            {
                break;
            }
        }
        await input.CompleteAsync();
        await output.CompleteAsync();
    }

    public static Socket CreateClientSocket(EndPoint endPoint)
        => endPoint is UnixDomainSocketEndPoint
            ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
            : new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);

    public static async Task<Socket> ConnectAsync(EndPoint endPoint, CancellationToken cancellationToken)
    {
        var socket = CreateClientSocket(endPoint);
        try
        {
            await socket.ConnectAsync(endPoint, cancellationToken);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public static async Task SendAllAsync(Socket socket, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        while (!data.IsEmpty)
        {
            var sent = await socket.SendAsync(data, SocketFlags.None, cancellationToken);
            Assert.True(sent > 0, "Socket.SendAsync sent nothing.");
            data = data[sent..];
        }
    }

    /// <summary>Receives exactly <paramref name="count"/> bytes; fails on an early EOF.</summary>
    public static async Task<byte[]> ReceiveExactlyAsync(Socket socket, int count, CancellationToken cancellationToken)
    {
        var buffer = new byte[count];
        int received = 0;
        while (received < count)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(received), SocketFlags.None, cancellationToken);
            Assert.True(n > 0, $"EOF after {received} of {count} bytes.");
            received += n;
        }
        return buffer;
    }

    /// <summary>Asserts that the next receive is the end of the stream (returns 0).</summary>
    public static async Task AssertEofAsync(Socket socket, CancellationToken cancellationToken)
    {
        var extra = new byte[64];
        var n = await socket.ReceiveAsync(extra, SocketFlags.None, cancellationToken);
        Assert.True(n == 0, $"Expected EOF, received {n} more bytes.");
    }

    /// <summary>Receives until EOF; fails when more than <paramref name="limit"/> bytes arrive.</summary>
    public static async Task<byte[]> ReceiveToEndAsync(Socket socket, int limit, CancellationToken cancellationToken)
    {
        var buffer = new byte[limit + 1];
        int received = 0;
        while (true)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(received), SocketFlags.None, cancellationToken);
            if (n == 0)
            {
                return buffer.AsSpan(0, received).ToArray();
            }
            received += n;
            Assert.True(received <= limit, $"Received more than {limit} bytes.");
        }
    }

    /// <summary>Sends a message on an open connection and expects exactly it back (the connection stays open).</summary>
    public static async Task AssertEchoesAsync(Socket socket, byte[] message, CancellationToken cancellationToken)
    {
        await SendAllAsync(socket, message, cancellationToken);
        var echoed = await ReceiveExactlyAsync(socket, message.Length, cancellationToken);
        Assert.Equal(message, echoed);
    }

    /// <summary>Connects, sends a message, half-closes, and expects exactly the message back and then EOF.</summary>
    public static async Task AssertEchoRoundTripAsync(EndPoint endPoint, byte[] message, CancellationToken cancellationToken)
    {
        using var socket = await ConnectAsync(endPoint, cancellationToken);
        await SendAllAsync(socket, message, cancellationToken);
        socket.Shutdown(SocketShutdown.Send);
        var echoed = await ReceiveToEndAsync(socket, message.Length, cancellationToken);
        Assert.Equal(message, echoed);
    }

    public static void AssertSameBytes(ReadOnlySpan<byte> expected, ReadOnlySpan<byte> actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        var mismatch = expected.CommonPrefixLength(actual);
        Assert.True(mismatch == expected.Length, $"First differing byte at offset {mismatch} of {expected.Length}.");
    }

    /// <summary>Completes when the token is cancelled (e.g. <see cref="ConnectionContext.ConnectionClosed"/> fires).</summary>
    public static Task WhenCancelled(CancellationToken token)
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        token.Register(static state => ((TaskCompletionSource)state!).TrySetResult(), tcs);
        return tcs.Task;
    }

    public static string UniqueUnixSocketPath()
        => Path.Combine(Path.GetTempPath(), $"epoll-test-{Guid.NewGuid():N}.sock");
}

/// <summary>One connection the test server accepted.</summary>
internal sealed class ServerConnection
{
    public ServerConnection(ConnectionContext context, Task closed)
    {
        Context = context;
        Closed = closed;
    }

    public ConnectionContext Context { get; }

    /// <summary>Completes when <see cref="ConnectionContext.ConnectionClosed"/> fires.</summary>
    public Task Closed { get; }

    /// <summary>The handler, followed by <see cref="ConnectionContext.DisposeAsync"/>.</summary>
    public Task Handler { get; set; } = Task.CompletedTask;
}

/// <summary>
/// A listener of a fresh <see cref="EpollTransportFactory"/> with an accept loop that runs a handler per
/// connection and disposes the connection after it.
/// </summary>
internal sealed class TestServer : IAsyncDisposable
{
    private readonly Func<ConnectionContext, Task> _handler;
    private readonly List<ServerConnection> _connections = new();
    private readonly Channel<ServerConnection> _accepted = Channel.CreateUnbounded<ServerConnection>();

    private TestServer(EpollTransportFactory factory, IConnectionListener listener, Func<ConnectionContext, Task> handler)
    {
        Factory = factory;
        Listener = listener;
        _handler = handler;
        AcceptLoop = Task.Run(AcceptLoopAsync);
    }

    public EpollTransportFactory Factory { get; }

    public IConnectionListener Listener { get; }

    /// <summary>Completes when AcceptAsync returned null.</summary>
    public Task AcceptLoop { get; }

    public EndPoint EndPoint => Listener.EndPoint;

    public static async Task<TestServer> StartAsync(EndPoint endPoint, Func<ConnectionContext, Task> handler, Action<EpollTransportOptions>? configure = null)
    {
        var factory = TransportHarness.CreateFactory(configure);
        try
        {
            var listener = await factory.BindAsync(endPoint);
            return new TestServer(factory, listener, handler);
        }
        catch
        {
            await factory.DisposeAsync();
            throw;
        }
    }

    public static Task<TestServer> StartEchoAsync(EndPoint endPoint, Action<EpollTransportOptions>? configure = null)
        => StartAsync(endPoint, TransportHarness.EchoAsync, configure);

    public ServerConnection[] Connections
    {
        get
        {
            lock (_connections)
            {
                return _connections.ToArray();
            }
        }
    }

    /// <summary>The next accepted connection, in accept order.</summary>
    public async Task<ServerConnection> NextConnectionAsync()
        => await _accepted.Reader.ReadAsync().AsTask().WaitAsync(WaitLimit);

    /// <summary>Awaits every handler accepted so far (and its DisposeAsync); rethrows their failures.</summary>
    public Task HandlersCompleted()
        => Task.WhenAll(Connections.Select(c => c.Handler)).WaitAsync(WaitLimit);

    /// <summary>Awaits ConnectionClosed of every connection accepted so far.</summary>
    public Task AllClosed()
        => Task.WhenAll(Connections.Select(c => c.Closed)).WaitAsync(WaitLimit);

    private async Task AcceptLoopAsync()
    {
        ConnectionContext? context;
        while ((context = await Listener.AcceptAsync()) is not null)
        {
            var connection = new ServerConnection(context, TransportHarness.WhenCancelled(context.ConnectionClosed));
            lock (_connections)
            {
                _connections.Add(connection);
                connection.Handler = RunHandlerAsync(context);
            }
            _accepted.Writer.TryWrite(connection);
        }
        _accepted.Writer.TryComplete();
    }

    private async Task RunHandlerAsync(ConnectionContext context)
    {
        // Off the accept loop: a handler's synchronous part must not hold up accepting.
        await Task.Yield();
        try
        {
            await _handler(context);
        }
        finally
        {
            await context.DisposeAsync();
        }
    }

    /// <summary>Unbinds, waits for the handlers (their failures are for the test to assert), disposes all.</summary>
    public async ValueTask DisposeAsync()
    {
        await Listener.UnbindAsync().AsTask().WaitAsync(WaitLimit);
        await AcceptLoop.WaitAsync(WaitLimit);
        try
        {
            await Task.WhenAll(Connections.Select(c => c.Handler)).WaitAsync(WaitLimit);
        }
        catch (Exception)
        {
            // Handler failures and leftovers are asserted by the tests that care; disposing the factory below
            // resets whatever is still open.
        }
        await Listener.DisposeAsync().AsTask().WaitAsync(WaitLimit);
        await Factory.DisposeAsync().AsTask().WaitAsync(WaitLimit);
    }
}
