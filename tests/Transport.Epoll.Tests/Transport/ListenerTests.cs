using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using EpollTransport.Connections;
using EpollTransport.Reactor;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using static EpollTransport.Tests.Transport.TransportHarness;

namespace EpollTransport.Tests.Transport;

/// <summary>Binding: DI registration, port 0 with a shared socket or SO_REUSEPORT groups, and address-in-use.</summary>
public class ListenerTests
{
    [Fact]
    public void UseEpollTransportRegistersTheFactoryAsAConnectionListenerFactory()
    {
        var factories = HostServices.GetServices<IConnectionListenerFactory>().ToArray();
        var epoll = Assert.Single(factories.OfType<EpollTransportFactory>());
        Assert.Same(epoll, HostServices.GetRequiredService<EpollTransportFactory>());
        // Registered after Kestrel's own transport: Kestrel asks the last one first.
        Assert.Same(epoll, factories[^1]);
        Assert.Equal(1, HostServices.GetRequiredService<IOptions<EpollTransportOptions>>().Value.ReactorCount);

        Assert.True(epoll.CanBind(new IPEndPoint(IPAddress.Loopback, 0)));
        Assert.True(epoll.CanBind(new IPEndPoint(IPAddress.IPv6Any, 0)));
        Assert.True(epoll.CanBind(new UnixDomainSocketEndPoint(UniqueUnixSocketPath())));
        Assert.True(epoll.CanBind(new FileHandleEndPoint(3, FileHandleType.Auto)));
        Assert.False(epoll.CanBind(new DnsEndPoint("localhost", 80)));
        Assert.False(epoll.CanBind(new NamedPipeEndPoint("pipe")));
    }

    [Theory]
    [InlineData(1, EpollAcceptMode.Shared)]
    [InlineData(2, EpollAcceptMode.Shared)]
    [InlineData(1, EpollAcceptMode.ReusePort)]
    [InlineData(2, EpollAcceptMode.ReusePort)]
    public async Task PortZeroReportsTheBoundPortAndEveryListeningSocketServesIt(int reactorCount, EpollAcceptMode mode)
    {
        const int Connections = 50;
        using var cts = new CancellationTokenSource(WaitLimit);
        await using var server = await TransportServer.StartEchoAsync(new IPEndPoint(IPAddress.Loopback, 0), Configure(reactorCount, false, acceptMode: mode));

        var endPoint = Assert.IsType<IPEndPoint>(server.EndPoint);
        Assert.Equal(IPAddress.Loopback, endPoint.Address);
        Assert.NotEqual(0, endPoint.Port);
        // Shared: one listening socket, in every reactor's epoll set. ReusePort: one per reactor, all on the same port.
        Assert.Equal(mode == EpollAcceptMode.Shared ? 1 : reactorCount, CountListeningSockets(endPoint));

        await Task.WhenAll(Enumerable.Range(0, Connections).Select(i =>
            AssertEchoRoundTripAsync(endPoint, Encoding.ASCII.GetBytes($"port {endPoint.Port} #{i}"), cts.Token)))
            .WaitAsync(WaitLimit);
        await server.HandlersCompleted();

        var connections = server.Connections;
        Assert.Equal(Connections, connections.Length);
        Assert.All(connections, c => Assert.Equal(endPoint.Port, Assert.IsType<IPEndPoint>(c.Context.LocalEndPoint).Port));
        if (mode == EpollAcceptMode.ReusePort)
        {
            // The kernel spreads connections over the SO_REUSEPORT group by a hash of the 4-tuple: with 50 client
            // ports every listening socket (hence every reactor) accepts some (all on one: probability 2^-49).
            var reactors = connections.Select(c => ((EpollConnection)c.Context).Reactor.Id).Distinct().Count();
            Assert.Equal(reactorCount, reactors);
        }
    }

    [Theory]
    [InlineData(1, EpollAcceptMode.Shared)]
    [InlineData(2, EpollAcceptMode.Shared)]
    [InlineData(2, EpollAcceptMode.ReusePort)]
    public async Task BindingAnEndPointInUseThrowsAddressInUseException(int reactorCount, EpollAcceptMode mode)
    {
        using var occupant = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        occupant.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        occupant.Listen(16);
        var taken = (IPEndPoint)occupant.LocalEndPoint!;

        await using var factory = CreateFactory(Configure(reactorCount, false, acceptMode: mode));
        await Assert.ThrowsAsync<AddressInUseException>(async () => await factory.BindAsync(taken));

        // The failed bind left the factory usable.
        using var cts = new CancellationTokenSource(WaitLimit);
        var listener = await factory.BindAsync(new IPEndPoint(IPAddress.Loopback, 0));
        try
        {
            using var client = await ConnectAsync(listener.EndPoint, cts.Token);
            var accepted = await listener.AcceptAsync().AsTask().WaitAsync(WaitLimit);
            Assert.NotNull(accepted);
            await accepted.DisposeAsync().AsTask().WaitAsync(WaitLimit);
            await AssertEofAsync(client, cts.Token);
        }
        finally
        {
            await listener.UnbindAsync();
            await listener.DisposeAsync();
        }
    }

    /// <summary>
    /// A connection the reactor accepted from the kernel before the unbind, which Kestrel has not taken yet, still goes
    /// to Kestrel: aborting it would reset a client whose request is already sent (behind a proxy, a 502 for a POST).
    /// </summary>
    [Fact]
    public async Task AConnectionAcceptedBeforeUnbindIsStillHandedOut()
    {
        using var cts = new CancellationTokenSource(WaitLimit);
        await using var factory = CreateFactory(Configure(1, false));
        var listener = await factory.BindAsync(new IPEndPoint(IPAddress.Loopback, 0));
        var observer = new RegistrationObserver();
        factory.Reactors.Current.Single().Observer = observer;
        try
        {
            using var client = await ConnectAsync(listener.EndPoint, cts.Token);
            // The reactor registers an accepted connection right before it queues it for Kestrel, on the loop thread
            // that the unbind's close then runs on: once this fires, the connection is queued before the close.
            await observer.ConnectionRegistered.Task.WaitAsync(WaitLimit);
            await listener.UnbindAsync().AsTask().WaitAsync(WaitLimit);

            var accepted = await listener.AcceptAsync().AsTask().WaitAsync(WaitLimit);
            Assert.NotNull(accepted);
            var echo = EchoAsync(accepted);
            await AssertEchoesAsync(client, Encoding.ASCII.GetBytes("sent before the unbind"), cts.Token);
            Assert.Null(await listener.AcceptAsync().AsTask().WaitAsync(WaitLimit));
            client.Shutdown(SocketShutdown.Send);
            await echo.WaitAsync(WaitLimit);
            await accepted.DisposeAsync().AsTask().WaitAsync(WaitLimit);
        }
        finally
        {
            await listener.DisposeAsync();
        }
    }

    /// <summary>
    /// StopAcceptingAsync, the first step of a drain: new connections are refused, the connection already open is
    /// served on, and Kestrel's accept loop ends (AcceptAsync returns null) without Kestrel unbinding.
    /// </summary>
    [Fact]
    public async Task StopAcceptingRefusesNewConnectionsAndServesOpenOnes()
    {
        using var cts = new CancellationTokenSource(WaitLimit);
        await using var server = await TransportServer.StartEchoAsync(new IPEndPoint(IPAddress.Loopback, 0), Configure(2, false));
        var endPoint = Assert.IsType<IPEndPoint>(server.EndPoint);
        using var client = await ConnectAsync(endPoint, cts.Token);
        await AssertEchoesAsync(client, Encoding.ASCII.GetBytes("before"), cts.Token);

        await server.Factory.StopAcceptingAsync(cts.Token).WaitAsync(WaitLimit);

        await server.AcceptLoop.WaitAsync(WaitLimit);
        using (var late = CreateClientSocket(endPoint))
        {
            var refused = await Assert.ThrowsAsync<SocketException>(async () => await late.ConnectAsync(endPoint, cts.Token));
            Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        }
        await AssertEchoesAsync(client, Encoding.ASCII.GetBytes("after"), cts.Token);
    }

    /// <summary>Disposing the listener closes the accepted connections that nobody took.</summary>
    [Fact]
    public async Task DisposingTheListenerClosesConnectionsNobodyTook()
    {
        using var cts = new CancellationTokenSource(WaitLimit);
        await using var factory = CreateFactory(Configure(1, false));
        var listener = await factory.BindAsync(new IPEndPoint(IPAddress.Loopback, 0));
        var observer = new RegistrationObserver();
        factory.Reactors.Current.Single().Observer = observer;

        using var client = await ConnectAsync(listener.EndPoint, cts.Token);
        await observer.ConnectionRegistered.Task.WaitAsync(WaitLimit);
        await listener.DisposeAsync().AsTask().WaitAsync(WaitLimit);
        try
        {
            Assert.Equal(0, await client.ReceiveAsync(new byte[16], SocketFlags.None, cts.Token));
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            // An abort may close with a reset; either way the connection is gone.
        }
    }

    /// <summary>Signals when a connection (not a listening socket) registers with the reactor.</summary>
    private sealed class RegistrationObserver : IReactorObserver
    {
        public TaskCompletionSource ConnectionRegistered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public bool RefusesRegistration(IEpollHandler handler, int fd)
        {
            if (handler is EpollConnection)
            {
                ConnectionRegistered.TrySetResult();
            }
            return false;
        }

        public void OnBudgetExhausted(IEpollHandler handler)
        {
        }

        public void OnReadPaused(IEpollHandler handler)
        {
        }

        public void OnWriteWouldBlock(IEpollHandler handler)
        {
        }
    }

    /// <summary>LISTEN entries of /proc/net/tcp (or tcp6) on this address and port.</summary>
    private static int CountListeningSockets(IPEndPoint endPoint)
    {
        Assert.Equal(AddressFamily.InterNetwork, endPoint.AddressFamily);
        var address = BitConverter.ToUInt32(endPoint.Address.GetAddressBytes(), 0).ToString("X8", CultureInfo.InvariantCulture);
        var local = $"{address}:{endPoint.Port:X4}";
        int count = 0;
        foreach (var line in File.ReadLines("/proc/net/tcp").Skip(1))
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length > 3 && fields[1] == local && fields[3] == "0A")
            {
                count++;
            }
        }
        return count;
    }
}
