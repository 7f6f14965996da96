using System.Net;
using System.Net.Sockets;
using System.Text;

namespace EpollTransport.Tests.Lifetime;

/// <summary>
/// SIGTERM, as a service manager sends it, to the sample in a child process: the request in flight completes, new
/// connections are refused, and the process exits cleanly (so its reactors ended and its fds closed).
/// </summary>
/// <remarks>
/// Runs alone, after the parallel tests (the leak tests' collection): in two full runs out of about a dozen it failed
/// within half a second while other tests' child servers started beside it, and not once in isolation.
/// </remarks>
[Collection(nameof(Transport.ResourceLeakCollection))]
public class SigtermTests
{

    [Fact]
    public async Task ARequestInFlightCompletesNewConnectionsAreRefusedAndTheProcessExitsCleanly()
    {
        using var server = new SampleProcess();
        try
        {
            var port = await server.ListeningPort.WaitAsync(LongWaitLimit);
            var target = new IPEndPoint(IPAddress.Loopback, port);

            // POST /echo streams the body back: half a body in, half echoed, and the request is in flight.
            using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await client.ConnectAsync(target).WaitAsync(LongWaitLimit);
            await client.SendAsync(Encoding.ASCII.GetBytes("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello"));
            var received = new StringBuilder();
            await ReceiveUntilAsync(client, received, text => text.EndsWith("hello", StringComparison.Ordinal)).WaitAsync(LongWaitLimit);

            await server.SignalAsync("TERM");
            await server.Logged("Application is shutting down").WaitAsync(LongWaitLimit);

            // The listeners close a moment after the host starts stopping; nothing announces it but the refusal itself.
            using var deadline = new CancellationTokenSource(LongWaitLimit);
            while (await TryConnectAsync(target, deadline.Token))
            {
            }
            Assert.False(deadline.IsCancellationRequested, "New connections were still accepted after SIGTERM.");

            await client.SendAsync(Encoding.ASCII.GetBytes("world"));
            await ReceiveUntilAsync(client, received, text => text.EndsWith("helloworld", StringComparison.Ordinal)).WaitAsync(LongWaitLimit);
            Assert.StartsWith("HTTP/1.1 200 OK", received.ToString(), StringComparison.Ordinal);

            var exitCode = await server.Exited.WaitAsync(LongWaitLimit);
            Assert.True(exitCode == 0, $"Exit code {exitCode}. Output:\n{server.Output()}");
            Assert.DoesNotContain("Unhandled exception", server.Output(), StringComparison.Ordinal);
        }
        catch (Exception e)
        {
            // What the server logged is the only account of its side of the shutdown.
            throw new InvalidOperationException($"{e.Message}\nServer output:\n{server.Output()}", e);
        }
    }

    /// <summary>True when a connection was made (and is closed again) or reset by a closing listener, false once it is refused.</summary>
    private static async Task<bool> TryConnectAsync(IPEndPoint target, CancellationToken cancellationToken)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(target, cancellationToken);
            return !cancellationToken.IsCancellationRequested;
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.ConnectionRefused)
        {
            return false;
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.ConnectionReset)
        {
            // The kernel completed the handshake, then reset it before ConnectAsync read the result: a listener
            // closing with connections still in its backlog resets them. Not refused yet: the next try tells.
            return !cancellationToken.IsCancellationRequested;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private static async Task ReceiveUntilAsync(Socket socket, StringBuilder received, Func<string, bool> done)
    {
        var buffer = new byte[4096];
        while (!done(received.ToString()))
        {
            var n = await socket.ReceiveAsync(buffer, SocketFlags.None);
            if (n == 0)
            {
                throw new InvalidOperationException($"The server closed the connection after: {received}");
            }
            received.Append(Encoding.ASCII.GetString(buffer, 0, n));
        }
    }
}
