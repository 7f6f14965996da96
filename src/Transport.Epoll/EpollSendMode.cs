namespace EpollTransport;

/// <summary>Which thread sends a connection's output; see <see cref="EpollTransportOptions.SendMode"/>.</summary>
public enum EpollSendMode
{
    /// <summary>
    /// Write-through for HTTP/2 connections, the reactor for every other connection. A connection is taken for HTTP/2
    /// when it opens with the cleartext HTTP/2 preface, or with a TLS ClientHello that offers <c>h2</c> by ALPN (the
    /// guess is wrong only on an endpoint limited to HTTP/1.1, which costs speed, never correctness).
    /// </summary>
    Auto,

    /// <summary>
    /// The thread-pool thread that flushes sends itself, once the application's code on it returns to the pool, with
    /// everything flushed until then. Only a send that cannot finish (the socket buffer is full) goes to the reactor.
    /// </summary>
    WriteThrough,

    /// <summary>Every send is handed to the connection's reactor, which makes it at the end of its turn.</summary>
    Reactor,
}
