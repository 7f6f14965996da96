namespace EpollTransport;

/// <summary>
/// Options for the epoll transport. Defaults match Kestrel's Sockets transport where both have the option.
/// </summary>
public sealed class EpollTransportOptions
{

    /// <summary>
    /// The number of reactors: event-loop threads, each with its own epoll instance. Defaults to
    /// <see cref="Environment.ProcessorCount"/>.
    /// </summary>
    public int ReactorCount { get; set => field = AtLeastOne(value); } = Environment.ProcessorCount;

    /// <summary>
    /// How the reactors share new connections. <see cref="EpollAcceptMode.Shared"/>: one listening socket that every
    /// reactor waits on with <c>EPOLLEXCLUSIVE</c>, so that a free reactor accepts, and none of the connections waits
    /// behind a reactor held by a long request. <see cref="EpollAcceptMode.ReusePort"/>: one <c>SO_REUSEPORT</c> socket
    /// per reactor for IP end points, the kernel's hash picking the reactor. Defaults to <see cref="EpollAcceptMode.Shared"/>.
    /// </summary>
    public EpollAcceptMode AcceptMode { get; set; }

    /// <summary>
    /// Runs Kestrel and the application on the reactor thread that owns the connection instead of the .NET
    /// thread pool: no thread hop per request, the fastest mode, and not safe for any app that blocks (a blocking
    /// call stalls every connection of that reactor). Defaults to <see langword="false"/>.
    /// </summary>
    public bool UnsafePreferInlineScheduling { get; set; }

    /// <summary>
    /// Which thread sends a connection's output. <see cref="EpollSendMode.WriteThrough"/>: the thread that flushes
    /// sends itself, which saves a hand-off between threads (and often an eventfd write and a context switch) and lets
    /// the flushes of many HTTP/2 streams share one <c>sendmsg</c>. <see cref="EpollSendMode.Reactor"/>: the reactor
    /// sends at the end of its turn, which keeps a busy reactor's loop batching receives and sends together, cheaper
    /// for request-response protocols (HTTP/1.1) on few cores. Flushes made on the reactor itself (inline scheduling)
    /// are always sent at the end of its turn. Defaults to <see cref="EpollSendMode.Auto"/>: write-through for
    /// HTTP/2 (h2c and gRPC without TLS, found by the connection preface; HTTP/2 over TLS, found by <c>h2</c> in the
    /// ClientHello's ALPN list), the reactor for everything else.
    /// </summary>
    public EpollSendMode SendMode { get; set; }

    /// <summary>
    /// Sends the files of <c>HttpResponse.SendFileAsync</c> (<c>Results.File</c>, <c>UseStaticFiles</c>, MVC's
    /// <c>PhysicalFileResult</c>) by <c>sendfile(2)</c>, from the page cache to the socket without a copy, where the
    /// bytes reach the socket unchanged: HTTP/1.x without TLS, a Content-Length, a body of 16 KiB or more, and no
    /// middleware that replaced the response body. Elsewhere the file is copied as Kestrel does, and the reason is
    /// counted (<c>epoll.sendfile.fallbacks</c>). Defaults to <see langword="true"/>.
    /// </summary>
    public bool ZeroCopySendFile { get; set; } = true;

    /// <summary>Sets <c>TCP_NODELAY</c> on accepted TCP connections. Defaults to <see langword="true"/>.</summary>
    public bool NoDelay { get; set; } = true;

    /// <summary>The <c>listen</c> backlog of each listening socket. Defaults to 512.</summary>
    public int Backlog { get; set => field = AtLeastOne(value); } = 512;

    /// <summary>
    /// The most received bytes buffered for the application before the transport stops reading from the
    /// socket (and the peer's TCP window closes). Defaults to 1 MiB; <see langword="null"/> means unbounded.
    /// </summary>
    public long? MaxReadBufferSize { get; set; } = 1024 * 1024;

    /// <summary>
    /// The most bytes the application may have written but not yet sent before its writes wait. Defaults to
    /// 64 KiB; <see langword="null"/> means unbounded.
    /// </summary>
    public long? MaxWriteBufferSize { get; set; } = 64 * 1024;

    /// <summary>
    /// The most bytes one connection reads per reactor turn before the other ready connections get their turn:
    /// the starvation guard of edge-triggered I/O. Defaults to 64 KiB.
    /// </summary>
    public int ReadBudgetPerTurn { get; set => field = AtLeastOne(value); } = 64 * 1024;

    /// <summary>
    /// File descriptors kept free for the runtime and the application below the process's <c>RLIMIT_NOFILE</c>:
    /// a connection accepted onto one of the top <see cref="FileDescriptorReserve"/> fds is reset at once and
    /// accepting pauses, as when <c>accept4</c> fails with EMFILE. A process left with no free fd can fail
    /// fatally inside the runtime (creating a thread, for one), so the transport never takes the last ones.
    /// Defaults to 64.
    /// </summary>
    public int FileDescriptorReserve { get; set => field = AtLeastOne(value); } = 64;

    /// <summary>The most connections one listening socket accepts per reactor turn. Defaults to 64.</summary>
    public int AcceptBudgetPerTurn { get; set => field = AtLeastOne(value); } = 64;

    /// <summary>The most events one <c>epoll_wait</c> returns. Defaults to 256.</summary>
    public int MaxEventsPerWait { get; set => field = AtLeastOne(value); } = 256;

    /// <summary>
    /// Accepted connections that may wait for Kestrel to take them; when that many wait, listening sockets stop
    /// accepting and new connections stay in the kernel backlog. Defaults to 1024.
    /// </summary>
    public int MaxPendingAccepts { get; set => field = AtLeastOne(value); } = 1024;

    private static int AtLeastOne(int value)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
        return value;
    }
}
