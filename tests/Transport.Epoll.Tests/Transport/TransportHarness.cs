using System.Buffers;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace EpollTransport.Tests.Transport;

/// <summary>
/// Shared pieces of the Connections-API tests: a factory built from Kestrel's own services, the echo handler that
/// <see cref="TransportServer"/> runs, and blocking-free client helpers with timeouts.
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

    public static Action<EpollTransportOptions> Configure(int reactorCount, bool inline, EpollSendMode sendMode = EpollSendMode.Auto,
        EpollAcceptMode acceptMode = EpollAcceptMode.Shared)
        => o =>
        {
            o.ReactorCount = reactorCount;
            o.UnsafePreferInlineScheduling = inline;
            o.SendMode = sendMode;
            o.AcceptMode = acceptMode;
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
