using System.Net;
using System.Net.Sockets;
using EpollTransport.Connections;
using EpollTransport.Reactor;
using EpollTransport.Tests.Reactor;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using static EpollTransport.Tests.Transport.TransportHarness;

namespace EpollTransport.Tests.Transport;

/// <summary>What names a connection in logs and to the application: its id and its end points, each set once.</summary>
public class ConnectionIdentityTests
{
    [Fact]
    public async Task ConcurrentFirstReadsOfTheConnectionIdAllSeeOneId()
    {
        // Kestrel reads the id on its accept loop while the reactor may read it to log a reset: the first reads of
        // each connection are released together by a barrier, so every connection is a race for the id.
        const int Connections = 5000;
        const int Readers = 4;
        var options = new EpollTransportOptions();
        var reactor = TestReactor.Start(0);
        var group = new ReactorGroup(options, HostServices.GetRequiredService<IMemoryPoolFactory<byte>>(), NullLogger.Instance);
        try
        {
            var connections = Enumerable.Range(0, Connections)
                .Select(_ => new EpollConnection(-1, null, null, reactor, group, options, NullLogger.Instance, reportsQueue: false))
                .ToArray();
            var seen = new string[Readers][];
            using var barrier = new Barrier(Readers);
            var threads = Enumerable.Range(0, Readers).Select(r => new Thread(() =>
            {
                var ids = seen[r] = new string[Connections];
                for (int i = 0; i < Connections; i++)
                {
                    barrier.SignalAndWait();
                    ids[i] = connections[i].ConnectionId;
                }
            })).ToArray();
            foreach (var thread in threads)
            {
                thread.Start();
            }
            Assert.All(threads, thread => Assert.True(thread.Join(WaitLimit), "A reader did not finish."));

            var split = Enumerable.Range(0, Connections).Where(i => seen.Select(ids => ids[i]).Distinct().Count() > 1).ToArray();
            Assert.True(split.Length == 0, $"{split.Length} of {Connections} connections showed more than one id, " +
                $"e.g. {string.Join(", ", seen.Select(ids => ids[split.FirstOrDefault()]))}.");
            Assert.All(Enumerable.Range(0, Connections), i => Assert.Equal(seen[0][i], connections[i].ConnectionId));
        }
        finally
        {
            reactor.Stop();
            await reactor.Completion.WaitAsync(WaitLimit);
            await group.DisposeAsync();
        }
    }

    [Fact]
    public async Task AConnectionWhoseRegistrationFailedReportsItsOwnEndPointsNotThoseOfTheSocketThatTookItsFd()
    {
        using var cts = new CancellationTokenSource(WaitLimit);
        await using var factory = CreateFactory(o => o.ReactorCount = 1);
        var listener = await factory.BindAsync(new IPEndPoint(IPAddress.Loopback, 0));
        await using var _ = listener;
        var reactor = factory.Reactors.Current.Single();
        var observer = new RefusingObserver();
        reactor.Observer = observer;

        // Bound first, so that its end points are known: the refused connection is reset, perhaps before the
        // client's connect completes.
        using var client = CreateClientSocket(listener.EndPoint);
        client.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var (clientLocal, clientRemote) = (client.LocalEndPoint, listener.EndPoint);
        try
        {
            await client.ConnectAsync(listener.EndPoint, cts.Token);
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.ConnectionReset)
        {
        }
        var fd = await observer.Refused.Task.WaitAsync(WaitLimit);
        // The refusal and the close of the fd that follows it happen in one turn of the loop; work posted now runs
        // after both.
        var turnDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        reactor.Schedule(static state => ((TaskCompletionSource)state!).SetResult(), turnDone);
        await turnDone.Task.WaitAsync(WaitLimit);

        // The kernel hands out the lowest free fd number: open sockets until one takes the failed connection's.
        var sockets = new List<Socket>();
        try
        {
            Socket? taker = null;
            for (int i = 0; i < 1024 && taker is null; i++)
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                sockets.Add(socket);
                if ((int)socket.Handle == fd)
                {
                    taker = socket;
                }
            }
            Assert.True(taker is not null, $"None of {sockets.Count} new sockets took fd {fd}.");
            taker.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            taker.Connect(new IPEndPoint(IPAddress.Loopback, 9));

            var connection = await listener.AcceptAsync(cts.Token).AsTask().WaitAsync(WaitLimit);
            Assert.NotNull(connection);
            var context = $"The client is {clientLocal} -> {clientRemote}; fd {fd} now belongs to a socket at {taker.LocalEndPoint} -> {taker.RemoteEndPoint}.";
            Assert.True(connection.LocalEndPoint is null || connection.LocalEndPoint.Equals(clientRemote),
                $"The connection's local end point is {connection.LocalEndPoint}. {context}");
            Assert.True(connection.RemoteEndPoint is null || connection.RemoteEndPoint.Equals(clientLocal),
                $"The connection's remote end point is {connection.RemoteEndPoint}. {context}");
            await connection.DisposeAsync().AsTask().WaitAsync(WaitLimit);
        }
        finally
        {
            foreach (var socket in sockets)
            {
                socket.Dispose();
            }
        }
    }

    private sealed class RefusingObserver : IReactorObserver
    {
        public TaskCompletionSource<int> Refused { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public bool RefusesRegistration(IEpollHandler handler, int fd)
        {
            if (handler is not EpollConnection)
            {
                return false;
            }
            Refused.TrySetResult(fd);
            return true;
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
}
