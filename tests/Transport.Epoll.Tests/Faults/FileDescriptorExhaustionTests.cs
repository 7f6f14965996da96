using System.Net;
using System.Net.Sockets;
using System.Text;

namespace EpollTransport.Tests.Faults;

/// <summary>
/// Runs the sample in a child process with a low RLIMIT_NOFILE (lowering it here would starve the test host),
/// floods it with connections until it reaches its fd reserve, then frees them. Without the reserve the flood
/// took the process's last fds and the runtime itself died ("Out of memory.") in about one run of two.
/// </summary>
public class FileDescriptorExhaustionTests
{

    [Fact]
    public async Task AcceptingResumesOnceDescriptorsAreFree()
    {
        const int FileLimit = 400;
        const int Flood = 480;
        using var server = new SampleProcess($"--nofile={FileLimit}:{FileLimit}");
        var port = await server.ListeningPort.WaitAsync(LongWaitLimit);
        var target = new IPEndPoint(IPAddress.Loopback, port);

        const int Cushion = 100;
        var held = new List<Socket>();
        var cushion = new List<Socket>();
        try
        {
            for (int i = 0; i < Flood; i++)
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                held.Add(socket);
                try
                {
                    // The kernel completes the handshake from the backlog; accepting is the server's part.
                    await socket.ConnectAsync(target).WaitAsync(LongWaitLimit);
                }
                catch (SocketException ex) when (ex.SocketErrorCode == SocketError.ConnectionReset)
                {
                    // At its reserve the server resets what it accepts, while it retries: a refusal, not a hang.
                }
            }
            await server.Logged("Out of file descriptors").WaitAsync(LongWaitLimit);
            Assert.False(server.HasExited, "The server process died when it ran short of descriptors.");

            // At its reserve the listener retries every 50 ms, and each retry resets the connection at the head of
            // the backlog. A cushion of connections ahead of the late one keeps the retries busy (for seconds) while
            // the server closes the flood's connections below; without it a loaded machine could still be at the
            // reserve when the retry reached the late connection, and reset it.
            for (int i = 0; i < Cushion; i++)
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                cushion.Add(socket);
                await socket.ConnectAsync(target).WaitAsync(LongWaitLimit);
            }

            // Queued behind the flood, and the server has no fd for it yet.
            using var late = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await late.ConnectAsync(target).WaitAsync(LongWaitLimit);
            await late.SendAsync(Encoding.ASCII.GetBytes("GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n"));

            foreach (var socket in held)
            {
                socket.Dispose();
            }
            held.Clear();

            // With no new connection arriving there is no new edge: only the listener's own retry can serve it.
            var response = await ReadResponseAsync(late).WaitAsync(LongWaitLimit);
            Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
            Assert.EndsWith("Hello, World!", response, StringComparison.Ordinal);
            Assert.False(server.HasExited, "The server process died.");
        }
        finally
        {
            foreach (var socket in held.Concat(cushion))
            {
                socket.Dispose();
            }
        }
    }

    private static async Task<string> ReadResponseAsync(Socket socket)
    {
        var buffer = new byte[4096];
        int total = 0;
        while (total < buffer.Length)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(total), SocketFlags.None);
            if (n == 0)
            {
                break;
            }
            total += n;
            var text = Encoding.ASCII.GetString(buffer, 0, total);
            if (text.EndsWith("Hello, World!", StringComparison.Ordinal))
            {
                return text;
            }
        }
        return Encoding.ASCII.GetString(buffer, 0, total);
    }
}
