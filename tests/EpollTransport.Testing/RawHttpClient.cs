using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace EpollTransport.Testing;

/// <summary>A response head and (with Content-Length) its body.</summary>
public sealed record RawResponse(int StatusCode, Dictionary<string, string> Headers, byte[] Body);

/// <summary>
/// An HTTP/1.1 client on a bare socket, for what the fault tests do that HttpClient will not: bytes one at a time,
/// malformed requests, resets (RST) and half-reads. Responses read whole must carry Content-Length.
/// </summary>
public sealed class RawHttpClient : IDisposable
{
    private const int MaxHeadBytes = 64 * 1024;

    private byte[] _buffer;
    private int _start;
    private int _end;

    private RawHttpClient(Socket socket, int bufferSize)
    {
        Socket = socket;
        _buffer = new byte[bufferSize];
    }

    public Socket Socket { get; }

    /// <summary>The client's own port: the server side knows the connection by it as the remote port.</summary>
    public int LocalPort => ((IPEndPoint)Socket.LocalEndPoint!).Port;

    /// <summary>Connects to the server. <paramref name="receiveBufferSize"/> sets SO_RCVBUF before connecting.</summary>
    public static async Task<RawHttpClient> ConnectAsync(Uri baseAddress, CancellationToken cancellationToken,
        int? receiveBufferSize = null, int bufferSize = 4096)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            if (receiveBufferSize is int size)
            {
                // Before connect, so that the window the client advertises is small from the first segment.
                socket.ReceiveBufferSize = size;
            }
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Parse(baseAddress.Host), baseAddress.Port), cancellationToken);
            return new RawHttpClient(socket, bufferSize);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public Task SendAsync(string text, CancellationToken cancellationToken)
        => SendAsync(Encoding.Latin1.GetBytes(text), cancellationToken);

    public async Task SendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        while (!data.IsEmpty)
        {
            var sent = await Socket.SendAsync(data, SocketFlags.None, cancellationToken);
            data = data[sent..];
        }
    }

    /// <summary>Sends a GET and reads its response.</summary>
    public async Task<RawResponse> GetAsync(string path, CancellationToken cancellationToken)
    {
        await SendAsync($"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", cancellationToken);
        return await ReadResponseAsync(cancellationToken);
    }

    public async Task<RawResponse> ReadResponseAsync(CancellationToken cancellationToken)
    {
        var head = await ReadHeadAsync(cancellationToken);
        if (!head.Headers.TryGetValue("Content-Length", out var lengthText))
        {
            throw new InvalidDataException($"Response {head.StatusCode} has no Content-Length.");
        }
        return head with { Body = await ReadBodyAsync(int.Parse(lengthText, CultureInfo.InvariantCulture), cancellationToken) };
    }

    /// <summary>Reads the next <paramref name="length"/> bytes: a body whose head <see cref="ReadHeadAsync"/> read.</summary>
    public async Task<byte[]> ReadBodyAsync(int length, CancellationToken cancellationToken)
    {
        var body = new byte[length];
        var copied = 0;
        while (copied < body.Length)
        {
            if (_start == _end)
            {
                await FillAsync(cancellationToken);
            }
            var count = Math.Min(_end - _start, body.Length - copied);
            _buffer.AsSpan(_start, count).CopyTo(body.AsSpan(copied));
            _start += count;
            copied += count;
        }
        return body;
    }

    public async Task<RawResponse> ReadHeadAsync(CancellationToken cancellationToken)
    {
        int headEnd;
        while ((headEnd = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n\r\n"u8)) < 0)
        {
            if (_end - _start >= MaxHeadBytes)
            {
                throw new InvalidDataException("The response head is too large.");
            }
            await FillAsync(cancellationToken);
        }

        var lines = Encoding.Latin1.GetString(_buffer, _start, headEnd).Split("\r\n");
        _start += headEnd + 4;
        var status = StatusOf(lines[0]) ?? throw new InvalidDataException($"Bad status line: {lines[0]}");
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var line in lines.AsSpan(1))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            headers[line[..colon]] = line[(colon + 1)..].Trim();
        }
        return new RawResponse(status, headers, []);
    }

    /// <summary>Reads and drops <paramref name="count"/> bytes.</summary>
    public async Task DiscardAsync(long count, CancellationToken cancellationToken)
    {
        while (count > 0)
        {
            if (_start == _end)
            {
                await FillAsync(cancellationToken);
            }
            var taken = (int)Math.Min(_end - _start, count);
            _start += taken;
            count -= taken;
        }
    }

    /// <summary>
    /// Everything (not yet read) the server sends until it closes, by FIN or by RST; at most
    /// <paramref name="maxBytes"/>, which fails the read when exceeded.
    /// </summary>
    public async Task<(byte[] Received, bool Reset)> ReadToEndAsync(CancellationToken cancellationToken, int maxBytes = 1024 * 1024)
    {
        var received = new MemoryStream();
        received.Write(_buffer, _start, _end - _start);
        _start = _end = 0;
        var chunk = new byte[16 * 1024];
        try
        {
            while (true)
            {
                var n = await Socket.ReceiveAsync(chunk, SocketFlags.None, cancellationToken);
                if (n == 0)
                {
                    return (received.ToArray(), false);
                }
                received.Write(chunk, 0, n);
                if (received.Length > maxBytes)
                {
                    throw new InvalidDataException($"The server sent more than {maxBytes} bytes without closing.");
                }
            }
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            return (received.ToArray(), true);
        }
    }

    /// <summary>Aborts the connection: SO_LINGER {1, 0} and close, so the server gets RST instead of FIN.</summary>
    public void Reset()
    {
        Socket.LingerState = new LingerOption(true, 0);
        Socket.Dispose();
    }

    public void Dispose() => Socket.Dispose();

    /// <summary>The status of an HTTP/1.1 status line (or of bytes that start with one), else null.</summary>
    public static int? StatusOf(ReadOnlySpan<byte> received)
    {
        var lineEnd = received.IndexOf("\r\n"u8);
        return StatusOf(Encoding.Latin1.GetString(lineEnd < 0 ? received : received[..lineEnd]));
    }

    private static int? StatusOf(string statusLine)
    {
        var parts = statusLine.Split(' ', 3);
        return parts.Length >= 2 && parts[0] == "HTTP/1.1" && parts[1].Length == 3
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var status)
            ? status
            : null;
    }

    private async Task FillAsync(CancellationToken cancellationToken)
    {
        if (_start > 0)
        {
            _buffer.AsSpan(_start, _end - _start).CopyTo(_buffer);
            _end -= _start;
            _start = 0;
        }
        if (_end == _buffer.Length)
        {
            Array.Resize(ref _buffer, _buffer.Length * 2);
        }
        var received = await Socket.ReceiveAsync(_buffer.AsMemory(_end), SocketFlags.None, cancellationToken);
        if (received == 0)
        {
            throw new EndOfStreamException("The server closed the connection before the whole response arrived.");
        }
        _end += received;
    }
}
