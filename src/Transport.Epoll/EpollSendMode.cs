namespace EpollTransport;

/// <summary>Which thread sends a connection's output; see <see cref="EpollTransportOptions.SendMode"/>.</summary>
public enum EpollSendMode
{
    /// <summary>
    /// Write-through for cleartext HTTP/2 connections (those that open with the HTTP/2 preface), the reactor for every
    /// other connection, TLS included.
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
