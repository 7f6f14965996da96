using System.Net;
using System.Net.Sockets;
using System.Text;
using EpollTransport.Interop;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;
using static EpollTransport.Tests.Transport.TransportHarness;

namespace EpollTransport.Tests.Transport;

/// <summary>Byte-exact echo through the Connections API over TCP (v4, v6, dual mode), Unix sockets and handed-in fds.</summary>
public class EchoTests
{
    /// <summary>
    /// The block size of Kestrel's memory pool, which the transport gets through <c>IMemoryPoolFactory</c>: the
    /// <c>_blockSize</c> constant of <c>PinnedBlockMemoryPool</c> (dotnet/aspnetcore,
    /// src/Shared/Buffers.MemoryPool/PinnedBlockMemoryPool.cs), its <c>MaxBufferSize</c>. The connection's pipes take
    /// their segments from the pool, so a payload of one block ± 1 or eight blocks ± 1 ends one byte short of a
    /// segment boundary, on it, or one byte past it. <see cref="TheTransportsPoolHasTheBlockSizeTheEchoSizesStraddle"/>
    /// fails if Kestrel changes it.
    /// </summary>
    private const int PoolBlockSize = 4096;

    public static TheoryData<int, int, bool> EchoCases()
    {
        var data = new TheoryData<int, int, bool>();
        int[] sizes =
        [
            1, 1024, 64 * 1024, 1024 * 1024, 16 * 1024 * 1024,
            PoolBlockSize - 1, PoolBlockSize, PoolBlockSize + 1, 8 * PoolBlockSize - 1, 8 * PoolBlockSize + 1,
        ];
        foreach (var size in sizes)
        {
            foreach (var (reactors, inline) in new[] { (1, false), (1, true), (2, false), (2, true) })
            {
                data.Add(size, reactors, inline);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(EchoCases))]
    public async Task EchoesRandomPayloadByteExact(int size, int reactorCount, bool inline)
    {
        using var cts = new CancellationTokenSource(WaitLimit);
        await using var server = await TransportServer.StartEchoAsync(new IPEndPoint(IPAddress.Loopback, 0), Configure(reactorCount, inline));

        var payload = new byte[size];
        new Random(size ^ reactorCount).NextBytes(payload);

        using var client = await ConnectAsync(server.EndPoint, cts.Token);
        var sending = Task.Run(async () =>
        {
            var random = new Random(size + 17);
            int offset = 0;
            while (offset < size)
            {
                // Mostly tiny and medium writes, with some up to 64 KiB.
                var chunk = random.Next(4) switch
                {
                    0 => random.Next(1, 17),
                    1 => random.Next(1, 1025),
                    _ => random.Next(1, 64 * 1024 + 1),
                };
                chunk = Math.Min(chunk, size - offset);
                await SendAllAsync(client, payload.AsMemory(offset, chunk), cts.Token);
                offset += chunk;
            }
            client.Shutdown(SocketShutdown.Send);
        });

        // Read concurrently with the writes: the echo would deadlock on full buffers otherwise.
        var received = await ReceiveExactlyAsync(client, size, cts.Token);
        await sending.WaitAsync(WaitLimit);
        await AssertEofAsync(client, cts.Token);
        AssertSameBytes(payload, received);

        await server.HandlersCompleted();
        await server.AllClosed();
    }

    [Fact]
    public async Task TheTransportsPoolHasTheBlockSizeTheEchoSizesStraddle()
    {
        var poolBlockSize = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await TransportServer.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), connection =>
        {
            poolBlockSize.TrySetResult(connection.Features.GetRequiredFeature<IMemoryPoolFeature>().MemoryPool.MaxBufferSize);
            return Task.CompletedTask;
        });
        using var cts = new CancellationTokenSource(WaitLimit);
        using var client = await ConnectAsync(server.EndPoint, cts.Token);

        Assert.Equal(PoolBlockSize, await poolBlockSize.Task.WaitAsync(WaitLimit));
    }

    [Theory]
    [MemberData(nameof(Configs), MemberType = typeof(TransportHarness))]
    public async Task FiveHundredConcurrentConnectionsEachEchoTheirOwnMessage(int reactorCount, bool inline)
    {
        const int Connections = 500;
        using var cts = new CancellationTokenSource(WaitLimit);
        await using var server = await TransportServer.StartEchoAsync(new IPEndPoint(IPAddress.Loopback, 0), Configure(reactorCount, inline));

        var clients = Enumerable.Range(0, Connections).Select(i => Task.Run(async () =>
        {
            var message = Encoding.ASCII.GetBytes($"connection {i}: {Guid.NewGuid():N} " + new string((char)('a' + i % 26), i % 300));
            await AssertEchoRoundTripAsync(server.EndPoint, message, cts.Token);
        })).ToArray();
        await Task.WhenAll(clients).WaitAsync(WaitLimit);

        await server.HandlersCompleted();
        Assert.Equal(Connections, server.Connections.Length);
        await server.AllClosed();
    }

    [Fact]
    public async Task EchoesOverIPv6Loopback()
    {
        using var cts = new CancellationTokenSource(WaitLimit);
        await using var server = await TransportServer.StartEchoAsync(new IPEndPoint(IPAddress.IPv6Loopback, 0), Configure(2, false));

        var endPoint = Assert.IsType<IPEndPoint>(server.EndPoint);
        Assert.Equal(IPAddress.IPv6Loopback, endPoint.Address);
        Assert.NotEqual(0, endPoint.Port);
        for (int i = 0; i < 10; i++)
        {
            await AssertEchoRoundTripAsync(endPoint, Encoding.ASCII.GetBytes($"over IPv6 #{i}"), cts.Token);
        }

        var accepted = server.Connections[0].Context;
        var remote = Assert.IsType<IPEndPoint>(accepted.RemoteEndPoint);
        Assert.Equal(IPAddress.IPv6Loopback, remote.Address);
        await server.HandlersCompleted();
    }

    [Fact]
    public async Task IPv6AnyAcceptsIPv4ClientsInDualMode()
    {
        using var cts = new CancellationTokenSource(WaitLimit);
        await using var server = await TransportServer.StartEchoAsync(new IPEndPoint(IPAddress.IPv6Any, 0), Configure(2, false));

        var port = Assert.IsType<IPEndPoint>(server.EndPoint).Port;
        Assert.NotEqual(0, port);
        for (int i = 0; i < 10; i++)
        {
            await AssertEchoRoundTripAsync(new IPEndPoint(IPAddress.Loopback, port), Encoding.ASCII.GetBytes($"IPv4 into [::] #{i}"), cts.Token);
            await AssertEchoRoundTripAsync(new IPEndPoint(IPAddress.IPv6Loopback, port), Encoding.ASCII.GetBytes($"IPv6 into [::] #{i}"), cts.Token);
        }
        await server.HandlersCompleted();
        Assert.Equal(20, server.Connections.Length);
    }

    [Theory]
    [MemberData(nameof(Configs), MemberType = typeof(TransportHarness))]
    public async Task EchoesOverUnixDomainSocketAndDeletesTheFile(int reactorCount, bool inline)
    {
        using var cts = new CancellationTokenSource(WaitLimit);
        var path = UniqueUnixSocketPath();
        try
        {
            var server = await TransportServer.StartEchoAsync(new UnixDomainSocketEndPoint(path), Configure(reactorCount, inline));
            try
            {
                Assert.True(File.Exists(path), "The socket file should exist while bound.");
                // Several connections, so that the hand-off to other reactors (one listening socket) is used.
                var payload = new byte[256 * 1024];
                new Random(7).NextBytes(payload);
                await Task.WhenAll(Enumerable.Range(0, 8).Select(i =>
                    AssertEchoRoundTripAsync(new UnixDomainSocketEndPoint(path), payload.AsSpan(0, 1 + i * 30_000).ToArray(), cts.Token)))
                    .WaitAsync(WaitLimit);
                await server.HandlersCompleted();
                Assert.Equal(8, server.Connections.Length);

                await server.Listener.UnbindAsync();
                Assert.False(File.Exists(path), "UnbindAsync should delete the socket file.");
            }
            finally
            {
                await server.DisposeAsync();
            }
            Assert.False(File.Exists(path), "The socket file should be gone after DisposeAsync.");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task EchoesOverHandedInFileHandleAndClosesIt()
    {
        using var cts = new CancellationTokenSource(WaitLimit);
        // A listening fd made outside the transport, as systemd socket activation hands one over; the transport
        // takes ownership and closes it.
        var fd = SocketInterop.Socket(SocketInterop.AF_INET).IntValue;
        Assert.True(SocketInterop.Bind(fd, new IPEndPoint(IPAddress.Loopback, 0)).IsSuccess);
        Assert.True(SocketInterop.Listen(fd, 16).IsSuccess);
        var port = Assert.IsType<IPEndPoint>(SocketInterop.GetLocalEndPoint(fd)).Port;
        var endPoint = new FileHandleEndPoint((ulong)fd, FileHandleType.Auto);

        var server = await TransportServer.StartEchoAsync(endPoint, Configure(2, false));
        try
        {
            var target = new IPEndPoint(IPAddress.Loopback, port);
            for (int i = 0; i < 6; i++)
            {
                await AssertEchoRoundTripAsync(target, Encoding.ASCII.GetBytes($"through a handed-in fd #{i}"), cts.Token);
            }
            await server.HandlersCompleted();
            Assert.Equal(6, server.Connections.Length);
            var local = Assert.IsType<IPEndPoint>(server.Connections[0].Context.LocalEndPoint);
            Assert.Equal(port, local.Port);
        }
        finally
        {
            await server.DisposeAsync();
        }

        // The transport closed the listening fd: nothing listens on the port any more.
        using var late = CreateClientSocket(new IPEndPoint(IPAddress.Loopback, port));
        var refused = await Assert.ThrowsAsync<SocketException>(async () =>
            await late.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cts.Token));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
    }
}
