using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Connections;
using static EpollTransport.Tests.Transport.TransportHarness;

namespace EpollTransport.Tests.Transport;

/// <summary>Half-close, reset, abort and unbind, seen from both ends.</summary>
public class CloseTests
{
    private static readonly IPEndPoint Loopback0 = new(IPAddress.Loopback, 0);

    [Theory]
    [MemberData(nameof(Configs), MemberType = typeof(TransportHarness))]
    public async Task PeerFinCompletesInputAfterAllBytesAndFiresConnectionClosed(int reactorCount, bool inline)
    {
        using var cts = new CancellationTokenSource(WaitLimit);
        var inputDone = new TaskCompletionSource<(long Bytes, bool Completed)>(TaskCreationOptions.RunContinuationsAsynchronously);
        var reply = Encoding.ASCII.GetBytes("bye after your FIN");

        await using var server = await TransportServer.StartAsync(Loopback0, async connection =>
        {
            var input = connection.Transport.Input;
            long total = 0;
            bool completed = false;
            // Bounded by the client's payload; ends with IsCompleted when the FIN arrives.
            for (int reads = 0; reads < 100_000; reads++)
            {
                var result = await input.ReadAsync();
                total += result.Buffer.Length;
                input.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted)
                {
                    completed = true;
                    break;
                }
            }
            inputDone.TrySetResult((total, completed));
            // The read side is closed by the peer; the write side still works (half-close).
            await connection.Transport.Output.WriteAsync(reply);
            await connection.Transport.Output.CompleteAsync();
        }, Configure(reactorCount, inline));

        var payload = new byte[300_000];
        new Random(3).NextBytes(payload);
        using var client = await ConnectAsync(server.EndPoint, cts.Token);
        await SendAllAsync(client, payload, cts.Token);
        client.Shutdown(SocketShutdown.Send);

        var (bytes, isCompleted) = await inputDone.Task.WaitAsync(WaitLimit);
        Assert.True(isCompleted, "The input should complete after the peer's FIN.");
        Assert.Equal(payload.Length, bytes);

        var serverConnection = await server.NextConnectionAsync();
        await serverConnection.Closed.WaitAsync(WaitLimit);
        Assert.True(serverConnection.Context.ConnectionClosed.IsCancellationRequested);

        var received = await ReceiveToEndAsync(client, 1024, cts.Token);
        Assert.Equal(reply, received);
        await serverConnection.Handler.WaitAsync(WaitLimit);
    }

    [Theory]
    [MemberData(nameof(Configs), MemberType = typeof(TransportHarness))]
    public async Task PeerResetWhileServerReadsSurfacesConnectionResetException(int reactorCount, bool inline)
    {
        using var cts = new CancellationTokenSource(WaitLimit);
        var readOutcome = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var first = Encoding.ASCII.GetBytes("first message, echoed before the reset");
        int accepted = 0;

        await using var server = await TransportServer.StartAsync(Loopback0, async connection =>
        {
            if (Interlocked.Increment(ref accepted) > 1)
            {
                // Connections after the reset get a plain echo.
                await EchoAsync(connection);
                return;
            }
            var input = connection.Transport.Input;
            try
            {
                for (int reads = 0; reads < 100_000; reads++)
                {
                    var result = await input.ReadAsync();
                    foreach (var segment in result.Buffer)
                    {
                        connection.Transport.Output.Write(segment.Span);
                    }
                    input.AdvanceTo(result.Buffer.End);
                    await connection.Transport.Output.FlushAsync();
                    if (result.IsCompleted)
                    {
                        readOutcome.TrySetResult(null);
                        return;
                    }
                }
            }
            catch (Exception ex)
            {
                readOutcome.TrySetResult(ex);
            }
        }, Configure(reactorCount, inline));

        using (var client = await ConnectAsync(server.EndPoint, cts.Token))
        {
            // The echo proves the server is in its read loop, waiting in ReadAsync, when the RST comes.
            await AssertEchoesAsync(client, first, cts.Token);
            client.LingerState = new LingerOption(true, 0);
            client.Close();
        }

        var outcome = await readOutcome.Task.WaitAsync(WaitLimit);
        Assert.NotNull(outcome);
        Assert.IsType<ConnectionResetException>(outcome);

        await AssertResetConnectionEndedAndListenerServesAsync(server, cts.Token);
    }

    [Theory]
    [MemberData(nameof(Configs), MemberType = typeof(TransportHarness))]
    public async Task PeerResetWhileServerWritesCompletesOutputAndSurfacesResetOnInput(int reactorCount, bool inline)
    {
        using var cts = new CancellationTokenSource(WaitLimit);
        var writeOutcome = new TaskCompletionSource<(Exception? Error, bool FlushCompleted, int Chunks)>(TaskCreationOptions.RunContinuationsAsynchronously);
        var readOutcome = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        int accepted = 0;

        await using var server = await TransportServer.StartAsync(Loopback0, async connection =>
        {
            if (Interlocked.Increment(ref accepted) > 1)
            {
                await EchoAsync(connection);
                return;
            }

            var output = connection.Transport.Output;
            var chunk = new byte[64 * 1024];
            new Random(5).NextBytes(chunk);
            int chunks = 0;
            try
            {
                // Streams until the client's reset stops it; at most 4 GiB, far more than any socket buffers.
                for (; chunks < 65_536; chunks++)
                {
                    var flush = await output.WriteAsync(chunk);
                    if (flush.IsCompleted)
                    {
                        writeOutcome.TrySetResult((null, true, chunks));
                        break;
                    }
                }
                writeOutcome.TrySetResult((null, false, chunks));
            }
            catch (Exception ex)
            {
                writeOutcome.TrySetResult((ex, false, chunks));
            }

            try
            {
                var result = await connection.Transport.Input.ReadAsync();
                connection.Transport.Input.AdvanceTo(result.Buffer.End);
                readOutcome.TrySetResult(null);
            }
            catch (Exception ex)
            {
                readOutcome.TrySetResult(ex);
            }
        }, Configure(reactorCount, inline));

        using (var client = await ConnectAsync(server.EndPoint, cts.Token))
        {
            // Some of the stream arrived: the server is writing (and soon blocked on full buffers).
            var some = await ReceiveExactlyAsync(client, 100_000, cts.Token);
            Assert.Equal(100_000, some.Length);
            client.LingerState = new LingerOption(true, 0);
            client.Close();
        }

        // As with Kestrel's Sockets transport: the reset ends the application's writes by completion (no
        // exception from FlushAsync), and surfaces as ConnectionResetException on the input side.
        var (error, flushCompleted, written) = await writeOutcome.Task.WaitAsync(WaitLimit);
        Assert.Null(error);
        Assert.True(flushCompleted, $"The write loop ended after {written} chunks without FlushResult.IsCompleted.");

        var readError = await readOutcome.Task.WaitAsync(WaitLimit);
        Assert.NotNull(readError);
        Assert.IsType<ConnectionResetException>(readError);

        await AssertResetConnectionEndedAndListenerServesAsync(server, cts.Token);
    }

    [Theory]
    [MemberData(nameof(Configs), MemberType = typeof(TransportHarness))]
    public async Task AbortWithoutReasonClosesGracefully(int reactorCount, bool inline)
    {
        // What Kestrel's HTTP/1.x connection does when the client's FIN ends it (Http1Connection.OnInputOrOutputCompleted).
        var (clientError, clientReceived, serverReadError) = await AbortAsync(connection => connection.Abort(null!), reactorCount, inline);
        Assert.Null(clientError);
        Assert.Equal(0, clientReceived);
        Assert.IsType<ConnectionAbortedException>(serverReadError);
    }

    [Theory]
    [MemberData(nameof(Configs), MemberType = typeof(TransportHarness))]
    public async Task AbortWithoutAnArgumentResets(int reactorCount, bool inline)
    {
        // ConnectionContext.Abort() passes a reason of its own.
        var (clientError, _, serverReadError) = await AbortAsync(connection => connection.Abort(), reactorCount, inline);
        var socketError = Assert.IsType<SocketException>(clientError);
        Assert.Equal(SocketError.ConnectionReset, socketError.SocketErrorCode);
        Assert.IsType<ConnectionAbortedException>(serverReadError);
    }

    [Theory]
    [MemberData(nameof(Configs), MemberType = typeof(TransportHarness))]
    public async Task AbortWithReasonResets(int reactorCount, bool inline)
    {
        var (clientError, _, serverReadError) = await AbortAsync(connection => connection.Abort(new ConnectionAbortedException("x")), reactorCount, inline);
        var socketError = Assert.IsType<SocketException>(clientError);
        Assert.Equal(SocketError.ConnectionReset, socketError.SocketErrorCode);
        Assert.IsType<ConnectionAbortedException>(serverReadError);
    }

    /// <summary>
    /// The server reads one message, aborts with <paramref name="abort"/>, and waits for ConnectionClosed (the fd is closed by then); only then
    /// does the client read. Returns what the client's receive did and what the server's next read did.
    /// </summary>
    private static async Task<(Exception? ClientError, int ClientReceived, Exception? ServerReadError)> AbortAsync(
        Action<ConnectionContext> abort, int reactorCount, bool inline)
    {
        using var cts = new CancellationTokenSource(WaitLimit);
        var aborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var serverRead = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var hello = Encoding.ASCII.GetBytes("hello, then abort");

        await using var server = await TransportServer.StartAsync(Loopback0, async connection =>
        {
            var input = connection.Transport.Input;
            long total = 0;
            for (int reads = 0; reads < 1000 && total < hello.Length; reads++)
            {
                var result = await input.ReadAsync();
                total += result.Buffer.Length;
                input.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted)
                {
                    break;
                }
            }

            abort(connection);
            await WhenCancelled(connection.ConnectionClosed).WaitAsync(WaitLimit);
            aborted.TrySetResult();

            try
            {
                var result = await input.ReadAsync();
                input.AdvanceTo(result.Buffer.End);
                serverRead.TrySetResult(null);
            }
            catch (Exception ex)
            {
                serverRead.TrySetResult(ex);
            }
        }, Configure(reactorCount, inline));

        using var client = await ConnectAsync(server.EndPoint, cts.Token);
        await SendAllAsync(client, hello, cts.Token);
        await aborted.Task.WaitAsync(WaitLimit);

        Exception? clientError = null;
        int received = -1;
        try
        {
            received = await client.ReceiveAsync(new byte[16], SocketFlags.None, cts.Token);
        }
        catch (SocketException ex)
        {
            clientError = ex;
        }

        var serverReadError = await serverRead.Task.WaitAsync(WaitLimit);
        await server.HandlersCompleted();
        return (clientError, received, serverReadError);
    }

    [Theory]
    [MemberData(nameof(Configs), MemberType = typeof(TransportHarness))]
    public async Task UnbindAndDisposeListenerKeepOpenConnectionsWorking(int reactorCount, bool inline)
    {
        using var cts = new CancellationTokenSource(WaitLimit);
        await using var server = await TransportServer.StartEchoAsync(Loopback0, Configure(reactorCount, inline));
        var endPoint = Assert.IsType<IPEndPoint>(server.EndPoint);

        using var client = await ConnectAsync(endPoint, cts.Token);
        await AssertEchoesAsync(client, Encoding.ASCII.GetBytes("before unbind"), cts.Token);
        var serverConnection = await server.NextConnectionAsync();

        await server.Listener.UnbindAsync().AsTask().WaitAsync(WaitLimit);
        // The accept loop ends: AcceptAsync returned null.
        await server.AcceptLoop.WaitAsync(WaitLimit);
        Assert.Null(await server.Listener.AcceptAsync().AsTask().WaitAsync(WaitLimit));

        using (var late = CreateClientSocket(endPoint))
        {
            var refused = await Assert.ThrowsAsync<SocketException>(async () => await late.ConnectAsync(endPoint, cts.Token));
            Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        }

        await AssertEchoesAsync(client, Encoding.ASCII.GetBytes("after unbind"), cts.Token);

        await server.Listener.DisposeAsync().AsTask().WaitAsync(WaitLimit);
        var big = new byte[512 * 1024];
        new Random(11).NextBytes(big);
        await AssertEchoesAsync(client, big, cts.Token);
        await AssertEchoesAsync(client, Encoding.ASCII.GetBytes("after dispose"), cts.Token);

        client.Shutdown(SocketShutdown.Send);
        await AssertEofAsync(client, cts.Token);
        await serverConnection.Handler.WaitAsync(WaitLimit);
        await serverConnection.Closed.WaitAsync(WaitLimit);
        Assert.Single(server.Connections);
    }

    /// <summary>The reset connection closed and its handler ended; new connections are served as before.</summary>
    private static async Task AssertResetConnectionEndedAndListenerServesAsync(TransportServer server, CancellationToken cancellationToken)
    {
        var resetConnection = await server.NextConnectionAsync();
        await resetConnection.Closed.WaitAsync(WaitLimit);
        await resetConnection.Handler.WaitAsync(WaitLimit);

        for (int i = 0; i < 5; i++)
        {
            await AssertEchoRoundTripAsync(server.EndPoint, Encoding.ASCII.GetBytes($"after the reset #{i}"), cancellationToken);
        }
        await server.HandlersCompleted();
    }
}
