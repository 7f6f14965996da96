namespace EpollTransport;

/// <summary>How the reactors share an end point's new connections; see <see cref="EpollTransportOptions.AcceptMode"/>.</summary>
public enum EpollAcceptMode
{
    /// <summary>
    /// One listening socket per end point, registered in every reactor's epoll set with <c>EPOLLEXCLUSIVE</c>: the
    /// kernel wakes one reactor that is waiting for events, and that reactor accepts and keeps the connection. A
    /// reactor held by a long or blocking request (with inline scheduling) is not waiting, so it is passed over while
    /// another is free. When every reactor is busy, each sees the socket readable at its next turn and the first to
    /// get there accepts.
    /// </summary>
    Shared,

    /// <summary>
    /// IP end points: one <c>SO_REUSEPORT</c> listening socket per reactor, and the kernel hashes each connection to
    /// one of them whatever that reactor is doing, so the connections hashed to a busy reactor wait in its backlog
    /// while the others idle. Unix sockets and handed-in fds: one listening socket on one reactor, which hands the
    /// connections it accepts to the reactors in turn.
    /// </summary>
    ReusePort,
}
