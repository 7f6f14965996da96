using System.Net;
using System.Threading.Channels;
using Microsoft.AspNetCore.Connections;

namespace EpollTransport.Tests.Transport;

/// <summary>
/// A server on the bare transport, without Kestrel: a listener of a fresh <see cref="EpollTransportFactory"/> with an
/// accept loop that runs a handler per connection (<see cref="TransportHarness.EchoAsync"/> or the test's own) and
/// disposes the connection after it.
/// </summary>
internal sealed class TransportServer : IAsyncDisposable
{
    private readonly Func<ConnectionContext, Task> _handler;
    private readonly List<ServerConnection> _connections = new();
    private readonly Channel<ServerConnection> _accepted = Channel.CreateUnbounded<ServerConnection>();

    private TransportServer(EpollTransportFactory factory, IConnectionListener listener, Func<ConnectionContext, Task> handler)
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

    public static async Task<TransportServer> StartAsync(EndPoint endPoint, Func<ConnectionContext, Task> handler, Action<EpollTransportOptions>? configure = null)
    {
        var factory = TransportHarness.CreateFactory(configure);
        try
        {
            var listener = await factory.BindAsync(endPoint);
            return new TransportServer(factory, listener, handler);
        }
        catch
        {
            await factory.DisposeAsync();
            throw;
        }
    }

    public static Task<TransportServer> StartEchoAsync(EndPoint endPoint, Action<EpollTransportOptions>? configure = null)
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

/// <summary>One connection a <see cref="TransportServer"/> accepted.</summary>
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
