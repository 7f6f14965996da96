using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using EpollTransport.Interop;
using EpollTransport.Reactor;
using Microsoft.AspNetCore.Connections;
using static EpollTransport.Tests.Transport.TransportHarness;

namespace EpollTransport.Tests.Transport;

/// <summary>
/// Write-through sends: a flushing thread that sends itself must hand a full socket to the reactor without losing or
/// reordering a byte, and must hold the connection's fd, so that a close meanwhile never lets its sendmsg reach a
/// number the kernel has given to another connection.
/// </summary>
public class WriteThroughTests
{
    /// <summary>SOL_SOCKET option of socket(7).</summary>
    private const int SO_SNDBUF = 7;

    private const string ThreadPool = "thread-pool";
    private const string ReactorSends = "reactor-sends";
    private const string Inline = "inline";

    public static TheoryData<bool, string> EndPointsAndModes => new()
    {
        { true, ThreadPool },
        { true, ReactorSends },
        { true, Inline },
        { false, ThreadPool },
        { false, ReactorSends },
        { false, Inline },
    };

    /// <summary>
    /// Catches a hand-off that loses, repeats or reorders bytes (the flusher's EAGAIN racing the reactor's EPOLLOUT
    /// edge, a stale held buffer, a lost wake-up that stalls the rest) and a mode that sends where it must not
    /// (EpollSendMode.Reactor or inline scheduling sending from a flushing thread).
    /// </summary>
    /// <remarks>
    /// Both a Unix socket and TCP: they fill differently (a Unix sender's buffer is charged per message until the peer
    /// reads it). A write-through send is queued to the end of the flushing thread's work item and may carry many
    /// flushes, so it can end in EAGAIN or in a short write; the test asserts that some send found the socket full and
    /// that the flusher handed the rest to the reactor.
    /// </remarks>
    [Theory]
    [MemberData(nameof(EndPointsAndModes))]
    public async Task SendsThatHitAFullSocketOnAFlushingThreadAreFinishedByTheReactorWithEveryByteInOrder(bool unixSocket, string mode)
    {
        const int Total = 4 * 1024 * 1024;
        // Small flushes until the socket is full (see the remarks), then flushes of every size up to 256 KiB.
        const int SmallFlushBytes = 256 * 1024;
        var data = new byte[Total];
        new Random(13).NextBytes(data);
        var flushes = 0;

        var path = unixSocket ? UniqueUnixSocketPath() : null;
        EndPoint endPoint = path is null ? new IPEndPoint(IPAddress.Loopback, 0) : new UnixDomainSocketEndPoint(path);
        await using var server = await TransportServer.StartAsync(endPoint, async connection =>
        {
            // The client's first byte says the reactor has started the connection (it reads only then), so the
            // output's reader is registered and each flush below finds the write side idle, not held by the reactor.
            var input = connection.Transport.Input;
            var hello = await input.ReadAsync();
            input.AdvanceTo(hello.Buffer.End);
            var output = connection.Transport.Output;
            var sizes = new Random(17);
            for (int offset = 0; offset < Total; flushes++)
            {
                var size = offset < SmallFlushBytes
                    ? sizes.Next(1, 4096)
                    : sizes.Next(4) switch
                    {
                        0 => sizes.Next(1, 64),
                        1 => sizes.Next(64, 8 * 1024),
                        2 => sizes.Next(8 * 1024, 64 * 1024),
                        _ => sizes.Next(64 * 1024, 256 * 1024),
                    };
                size = Math.Min(size, Total - offset);
                await output.WriteAsync(data.AsMemory(offset, size));
                offset += size;
            }
            await output.CompleteAsync();
        }, Configure(reactorCount: 1, inline: mode == Inline, sendMode: mode == ReactorSends ? EpollSendMode.Reactor : EpollSendMode.WriteThrough));
        var observer = new SocketObserver(sendBufferSize: 16 * 1024);
        var reactor = server.Factory.Reactors.Current.Single();
        reactor.Observer = observer;

        using var client = CreateClientSocket(server.EndPoint);
        if (!unixSocket)
        {
            client.ReceiveBufferSize = 16 * 1024;
        }
        await client.ConnectAsync(server.EndPoint).WaitAsync(WaitLimit);
        await SendAllAsync(client, "!"u8.ToArray(), CancellationToken.None);

        // The client reads nothing until a send has found the socket full.
        await observer.WriteBlocked.Task.WaitAsync(LongWaitLimit);

        // Then it reads slowly: little at a time, so that the socket fills again and again while the server flushes.
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var chunk = new byte[4096];
        long received = 0;
        while (true)
        {
            var n = await client.ReceiveAsync(chunk.AsMemory(0, Random.Shared.Next(1, chunk.Length)), SocketFlags.None)
                .AsTask().WaitAsync(LongWaitLimit);
            if (n == 0)
            {
                break;
            }
            hash.AppendData(chunk, 0, n);
            received += n;
            Assert.True(received <= Total, $"Received more than the {Total} bytes sent.");
        }
        Assert.Equal(Total, received);
        Assert.Equal(SHA256.HashData(data), hash.GetHashAndReset());
        await server.HandlersCompleted();

        var writeThrough = reactor.WriteThroughCounters;
        if (mode == ThreadPool)
        {
            Assert.True(writeThrough.Sends > 0, "No flush was sent by the thread that made it.");
            // The flusher's send is queued to the end of its work item, so one send may carry many flushes and end in a
            // short write rather than EAGAIN; either way the hand-off below must have happened.
            Assert.True(writeThrough.WouldBlock + reactor.Counters.WriteWouldBlock > 0, "No send found the socket full.");
            Assert.True(writeThrough.HandOffs > 0, "No flushing thread handed the write side to the reactor.");
        }
        else
        {
            if (mode == ReactorSends)
            {
                // Every flush resumes the transport on the reactor, whichever thread made it. (With inline scheduling
                // the handler's first flushes may still come from the pool thread it started on, and write through.)
                Assert.Equal(0, writeThrough.Sends);
                Assert.Equal(0, writeThrough.HandOffs);
            }
            Assert.True(reactor.Counters.WriteWouldBlock > 0, "No reactor send found the socket full.");
        }
    }

    public static TheoryData<bool, bool> ClosersAndSchedulings => new()
    {
        { false, false },
        { false, true },
        { true, false },
        { true, true },
    };

    /// <summary>
    /// The fd-reuse canary. Catches a close that calls close(fd) while a flushing thread may still sendmsg on it:
    /// the kernel gives the freed number to the next socket it creates (here, the connections accepted right after),
    /// and the parked flusher's bytes would then go to a stranger.
    /// </summary>
    /// <param name="clientResets">
    /// True: the client resets A (the reactor reads the reset while the flusher is parked). False: the server aborts A
    /// (the reactor runs <c>Close</c> while the flusher is parked, and must leave the close of the fd to it).
    /// </param>
    /// <param name="inline">
    /// Inline scheduling: the handler below flushes from the thread pool all the same, which writes through too.
    /// </param>
    [Theory]
    [MemberData(nameof(ClosersAndSchedulings))]
    public async Task AConnectionClosedWhileItsFlusherIsAboutToSendKeepsItsFdUntilTheFlusherLeaves(bool clientResets, bool inline)
    {
        const int NewConnections = 8;
        var marker = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat($"<A-{Guid.NewGuid():N}>", 1000)));
        var observer = new SocketObserver(sendBufferSize: null);

        await using var server = await TransportServer.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), async connection =>
        {
            var input = connection.Transport.Input;
            var first = await input.ReadAsync();
            if (first.Buffer.IsEmpty)
            {
                input.AdvanceTo(first.Buffer.End);
                return;
            }
            if (first.Buffer.FirstSpan[0] != (byte)'A')
            {
                input.AdvanceTo(first.Buffer.Start);
                await EchoAsync(connection);
                return;
            }
            input.AdvanceTo(first.Buffer.GetPosition(1));
            // Off the reactor (with inline scheduling the read above resumed on it), so that the flush writes through.
            await Task.Yield();
            // Parks in the observer, inside the flush, owning the write side with the marker in hand.
            await connection.Transport.Output.WriteAsync(marker);
        }, Configure(reactorCount: 1, inline, EpollSendMode.WriteThrough));
        server.Factory.Reactors.Current.Single().Observer = observer;

        using var cts = new CancellationTokenSource(LongWaitLimit);
        var others = new List<Socket>();
        try
        {
            using var clientA = await ConnectAsync(server.EndPoint, cts.Token);
            var a = await server.NextConnectionAsync();
            observer.Target = (IEpollHandler)a.Context;
            await SendAllAsync(clientA, "A"u8.ToArray(), cts.Token);
            await observer.Parked.Task.WaitAsync(WaitLimit);
            var (aFd, aSocket) = observer.SocketOf(a.Context);

            if (clientResets)
            {
                clientA.LingerState = new LingerOption(true, 0);
                clientA.Close();
            }
            else
            {
                a.Context.Abort(new ConnectionAbortedException("The test aborts A while its flusher is parked."));
            }
            // ConnectionClosed fires as the reactor completes A's input: after Close, or after reading the reset.
            await a.Closed.WaitAsync(WaitLimit);
            var disposing = a.Context.DisposeAsync().AsTask();

            // New connections at once, while the parked flusher holds A's fd: the kernel hands out the lowest free
            // numbers, so had A's been freed, one of these (or any socket this process opened meanwhile) would have it.
            for (int i = 0; i < NewConnections; i++)
            {
                var other = await ConnectAsync(server.EndPoint, cts.Token);
                others.Add(other);
                await AssertEchoesAsync(other, Encoding.ASCII.GetBytes($"B{i} before the release"), cts.Token);
            }
            Assert.Equal(aSocket, FdTarget(aFd));
            Assert.DoesNotContain(aFd, server.Connections.Skip(1).Select(c => observer.SocketOf(c.Context).Fd));
            Assert.False(disposing.IsCompleted, "A's DisposeAsync completed while its flusher still held the fd.");

            observer.Release.Set();
            await disposing.WaitAsync(WaitLimit);
            Assert.NotEqual(aSocket, FdTarget(aFd));

            if (!clientResets)
            {
                // A's client sees at most a prefix of its own marker, then the reset (or the end).
                var (receivedByA, _) = await ReceiveUntilClosedAsync(clientA, marker.Length, cts.Token);
                Assert.True(marker.AsSpan().StartsWith(receivedByA), "A's client received bytes that are not its marker.");
            }

            // No byte of A's ever reaches another connection: each gets exactly its own echo, then the end.
            for (int i = 0; i < others.Count; i++)
            {
                var message = Encoding.ASCII.GetBytes($"B{i} after the release");
                await SendAllAsync(others[i], message, cts.Token);
                others[i].Shutdown(SocketShutdown.Send);
                var (echoed, reset) = await ReceiveUntilClosedAsync(others[i], message.Length, cts.Token);
                Assert.False(reset, $"B{i} was reset.");
                Assert.Equal(message, echoed);
            }

            // No fd left behind: every server-side socket of this test is closed once its connection is disposed.
            await server.HandlersCompleted();
            foreach (var (fd, socket) in server.Connections.Select(c => observer.SocketOf(c.Context)))
            {
                Assert.NotEqual(socket, FdTarget(fd));
            }
        }
        finally
        {
            // A failed assertion must not leave a pool thread parked.
            observer.Release.Set();
            foreach (var other in others)
            {
                other.Dispose();
            }
        }
    }

    /// <summary>Receives until EOF or reset; fails when more than <paramref name="limit"/> bytes arrive.</summary>
    private static async Task<(byte[] Received, bool Reset)> ReceiveUntilClosedAsync(Socket socket, int limit, CancellationToken cancellationToken)
    {
        var buffer = new byte[limit + 1];
        int received = 0;
        try
        {
            while (true)
            {
                var n = await socket.ReceiveAsync(buffer.AsMemory(received), SocketFlags.None, cancellationToken);
                if (n == 0)
                {
                    return (buffer.AsSpan(0, received).ToArray(), false);
                }
                received += n;
                Assert.True(received <= limit, $"Received more than {limit} bytes.");
            }
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            return (buffer.AsSpan(0, received).ToArray(), true);
        }
    }

    /// <summary>What the process's fd <paramref name="fd"/> is now (<c>socket:[inode]</c>), or null when it is closed.</summary>
    private static string? FdTarget(int fd)
    {
        try
        {
            return new FileInfo($"/proc/self/fd/{fd}").LinkTarget;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>
    /// Learns each connection's fd and socket as the reactor registers it (and can shrink its send buffer then), and
    /// parks the first write-through send of <see cref="Target"/> until the test releases it.
    /// </summary>
    private sealed class SocketObserver(int? sendBufferSize) : IReactorObserver
    {
        private readonly ConcurrentDictionary<IEpollHandler, (int Fd, string? Socket)> _sockets = new();
        private int _parked;

        public volatile IEpollHandler? Target;

        public TaskCompletionSource WriteBlocked { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Parked { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public ManualResetEventSlim Release { get; } = new();

        public (int Fd, string? Socket) SocketOf(ConnectionContext connection) => _sockets[(IEpollHandler)connection];

        public bool RefusesRegistration(IEpollHandler handler, int fd)
        {
            if (sendBufferSize is int size)
            {
                Assert.True(SocketInterop.SetOption(fd, SocketInterop.SOL_SOCKET, SO_SNDBUF, size).IsSuccess);
            }
            _sockets[handler] = (fd, FdTarget(fd));
            return false;
        }

        public void BeforeWriteThrough(IEpollHandler handler)
        {
            if (handler == Target && Interlocked.Exchange(ref _parked, 1) == 0)
            {
                Parked.TrySetResult();
                // Bounded, so that a test that fails before releasing it cannot park a pool thread for good.
                Release.Wait(LongWaitLimit);
            }
        }

        public void OnWriteWouldBlock(IEpollHandler handler) => WriteBlocked.TrySetResult();

        public void OnBudgetExhausted(IEpollHandler handler)
        {
        }

        public void OnReadPaused(IEpollHandler handler)
        {
        }
    }
}
