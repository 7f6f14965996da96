using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace AbBench;

/// <summary>
/// Holds many idle keep-alive HTTP/1.1 connections to a server: each sends one GET /plaintext and reads the
/// whole response, then stays open. Closing resets them (RST), so that no TIME_WAIT piles up across rounds.
/// </summary>
internal sealed class IdleClient : IDisposable
{
    private const int InFlight = 256;
    private static readonly TimeSpan PerConnectionTimeout = TimeSpan.FromSeconds(30);
    private static readonly byte[] Request = "GET /plaintext HTTP/1.1\r\nHost: localhost\r\n\r\n"u8.ToArray();

    private readonly Socket?[] _sockets;

    private IdleClient(Socket?[] sockets) => _sockets = sockets;

    public int Count => _sockets.Length;

    /// <summary>Opens <paramref name="count"/> connections, at most 256 at a time; any failure resets them all and throws.</summary>
    public static async Task<IdleClient> OpenAsync(int port, int count, CancellationToken cancellation)
    {
        var client = new IdleClient(new Socket?[count]);
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        try
        {
            await Parallel.ForEachAsync(Enumerable.Range(0, count),
                new ParallelOptions { MaxDegreeOfParallelism = InFlight, CancellationToken = cancellation },
                async (i, token) => client._sockets[i] = await OpenOneAsync(endPoint, i, token));
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellation.IsCancellationRequested)
        {
            var opened = client._sockets.Count(s => s is not null);
            client.Dispose();
            throw new BenchException($"idle connections: {e.Message} ({opened} of {count} were open).");
        }
        catch
        {
            client.Dispose();
            throw;
        }
        return client;
    }

    /// <summary>Resets every connection (SO_LINGER 0: RST, no TIME_WAIT).</summary>
    public void Dispose()
    {
        for (var i = 0; i < _sockets.Length; i++)
        {
            if (Interlocked.Exchange(ref _sockets[i], null) is { } socket)
            {
                Reset(socket);
            }
        }
    }

    private static async Task<Socket> OpenOneAsync(IPEndPoint endPoint, int index, CancellationToken cancellation)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        deadline.CancelAfter(PerConnectionTimeout);
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(endPoint, deadline.Token);
            await socket.SendAsync(Request, SocketFlags.None, deadline.Token);
            await ReadResponseAsync(socket, deadline.Token);
            return socket;
        }
        catch (OperationCanceledException) when (!cancellation.IsCancellationRequested)
        {
            Reset(socket);
            throw new IOException($"connection #{index}: no complete response within {PerConnectionTimeout.TotalSeconds:0} s");
        }
        catch (Exception e) when (e is SocketException or IOException)
        {
            Reset(socket);
            throw new IOException($"connection #{index}: {e.Message}", e);
        }
        catch
        {
            Reset(socket);
            throw;
        }
    }

    /// <summary>Reads one response framed by Content-Length; anything else is an error.</summary>
    private static async Task ReadResponseAsync(Socket socket, CancellationToken cancellation)
    {
        var buffer = new byte[4096];
        var filled = 0;
        var headerEnd = -1;
        while (headerEnd < 0)
        {
            if (filled == buffer.Length)
            {
                throw new IOException("the response head is larger than 4 KiB");
            }
            var read = await socket.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None, cancellation);
            if (read == 0)
            {
                throw new IOException("the server closed the connection before the response was complete");
            }
            filled += read;
            headerEnd = buffer.AsSpan(0, filled).IndexOf("\r\n\r\n"u8);
        }

        var head = Encoding.ASCII.GetString(buffer, 0, headerEnd).Split("\r\n");
        if (!head[0].StartsWith("HTTP/1.1 2", StringComparison.Ordinal))
        {
            throw new IOException($"unexpected response '{head[0]}'");
        }
        var lengthHeader = head.Skip(1).FirstOrDefault(h => h.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))
            ?? throw new IOException("the response has no Content-Length");
        var length = long.Parse(lengthHeader["Content-Length:".Length..].Trim(), CultureInfo.InvariantCulture);

        var body = (long)filled - (headerEnd + 4);
        while (body < length)
        {
            var read = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellation);
            if (read == 0)
            {
                throw new IOException("the server closed the connection in the middle of the body");
            }
            body += read;
        }
        if (body > length)
        {
            throw new IOException("the server sent more than one response");
        }
    }

    private static void Reset(Socket socket)
    {
        try
        {
            socket.LingerState = new LingerOption(true, 0);
        }
        catch (SocketException)
        {
            // Not connected: a plain close is all there is.
        }
        catch (ObjectDisposedException)
        {
            return;
        }
        socket.Dispose();
    }
}
