using System.Net;
using System.Net.Sockets;
using EpollTransport.Connections;
using EpollTransport.Interop;
using EpollTransport.Posix;
using EpollTransport.Reactor;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace EpollTransport.Listening;

/// <summary>
/// Kestrel's view of one bound end point. With <see cref="EpollAcceptMode.Shared"/> (the default) it has one listening
/// socket, registered in every reactor with <c>EPOLLEXCLUSIVE</c>: the kernel wakes a reactor that waits for events,
/// and the reactor that accepts a connection keeps it. With <see cref="EpollAcceptMode.ReusePort"/> IP end points get
/// one <c>SO_REUSEPORT</c> listening socket per reactor, so the kernel's hash picks the reactor; a Unix socket or a
/// handed-in fd has one listening socket, whose reactor hands accepted fds to the others round-robin.
/// </summary>
internal sealed class EpollConnectionListener : IConnectionListener
{
    private readonly EpollTransportOptions _options;
    private readonly ReactorGroup _group;
    private readonly List<ListenSocket> _sockets = new();
    private EpollReactor[] _reactors = [];
    private bool _reusePort;

    /// <summary>One fd registered in every reactor (<see cref="EpollAcceptMode.Shared"/>): the accepting reactor keeps the connection.</summary>
    private bool _shared;

    /// <summary>Per reactor, its <see cref="ReactorCounters.Waits"/> at the last accept's look (<see cref="LeastLoaded"/>).</summary>
    private long[] _waitsSeen = [];
    private bool _isTcp;

    /// <summary>
    /// A Unix stream socket: a receive shorter than its buffer emptied the queue (see <c>EpollConnection.Receive</c>).
    /// </summary>
    private bool _isUnixStream;
    private string? _unixSocketPath;
    private Task? _unbind;
    private int _disposed;
    private EndPoint? _lastLocalEndPoint;

    public EpollConnectionListener(EndPoint endPoint, EpollTransportOptions options, ReactorGroup group, ILogger logger)
    {
        EndPoint = endPoint;
        _options = options;
        _group = group;
        Logger = logger;
        Queue = new AcceptQueue(options.MaxPendingAccepts);
    }

    public EndPoint EndPoint { get; private set; }

    /// <summary>Called once when the listener is disposed (the factory forgets it).</summary>
    public Action<EpollConnectionListener>? Disposed { get; set; }

    public ILogger Logger { get; }

    public AcceptQueue Queue { get; }

    /// <summary>Accepted fds at or above this number are in the reserve (<see cref="EpollTransportOptions.FileDescriptorReserve"/>).</summary>
    public long FileDescriptorCeiling { get; private set; } = long.MaxValue;

    /// <summary>Creates, binds and registers the listening sockets. Throws <see cref="AddressInUseException"/> on EADDRINUSE.</summary>
    public void Bind()
    {
        var limit = SocketInterop.GetFileLimit();
        FileDescriptorCeiling = Math.Max(limit - _options.FileDescriptorReserve, limit / 2);
        _reactors = _group.Acquire();
        var fds = new List<int>();
        try
        {
            switch (EndPoint)
            {
                case IPEndPoint ip:
                    _isTcp = true;
                    _reusePort = _reactors.Length > 1 && _options.AcceptMode == EpollAcceptMode.ReusePort;
                    EndPoint = _reusePort ? BindReusePortGroup(ip, fds) : BindOne(ip, reusePort: false, fds);
                    break;
                case UnixDomainSocketEndPoint unix:
                    _isUnixStream = true;
                    var fd = Check(SocketInterop.Socket(SocketInterop.AF_UNIX), EndPoint);
                    fds.Add(fd);
                    Check(SocketInterop.Bind(fd, unix), EndPoint);
                    var path = unix.ToString();
                    _unixSocketPath = path.Length > 0 && path[0] != '\0' && path[0] != '@' ? path : null;
                    Check(SocketInterop.Listen(fd, _options.Backlog), EndPoint);
                    break;
                case FileHandleEndPoint handle:
                    var handed = checked((int)handle.FileHandle);
                    fds.Add(handed);
                    Check(SocketInterop.SetNonBlocking(handed), EndPoint);
                    _isTcp = SocketInterop.GetOption(handed, SocketInterop.SOL_SOCKET, SocketInterop.SO_DOMAIN, out var domain).IsSuccess
                        && domain is SocketInterop.AF_INET or SocketInterop.AF_INET6;
                    _isUnixStream = domain == SocketInterop.AF_UNIX
                        && SocketInterop.GetOption(handed, SocketInterop.SOL_SOCKET, SocketInterop.SO_TYPE, out var type).IsSuccess
                        && type == SocketInterop.SOCK_STREAM;
                    // Already listening when handed over by systemd; listen() again only sets the backlog.
                    Check(SocketInterop.Listen(handed, _options.Backlog), EndPoint);
                    break;
                default:
                    throw new NotSupportedException($"The epoll transport cannot bind {EndPoint.GetType().Name}.");
            }
        }
        catch
        {
            foreach (var fd in fds)
            {
                PosixIO.Close(fd);
            }
            _ = _group.Release();
            throw;
        }

        _shared = _options.AcceptMode == EpollAcceptMode.Shared && _reactors.Length > 1;
        _waitsSeen = new long[_reactors.Length];
        if (_shared)
        {
            var owner = new SharedFd(fds[0], _reactors.Length);
            foreach (var reactor in _reactors)
            {
                _sockets.Add(new ListenSocket(owner, reactor, this, _options.AcceptBudgetPerTurn));
            }
        }
        else
        {
            for (int i = 0; i < fds.Count; i++)
            {
                _sockets.Add(new ListenSocket(new SharedFd(fds[i], 1), _reactors[i % _reactors.Length], this, _options.AcceptBudgetPerTurn));
            }
        }
        foreach (var socket in _sockets)
        {
            socket.Reactor.Schedule(static state => ((ListenSocket)state!).Register(), socket);
        }
        EpollTransportLog.Bound(Logger, EndPoint, fds.Count, _sockets.Count);
    }

    /// <summary>
    /// Binds one socket per reactor with SO_REUSEPORT. A socket bound alone first (without SO_REUSEPORT) tells
    /// whether the port is free: without it, a second server of the same user joining the group would silently
    /// share the port instead of failing with EADDRINUSE. Its port is also the one the group takes for port 0.
    /// </summary>
    private IPEndPoint BindReusePortGroup(IPEndPoint ip, List<int> fds)
    {
        const int Attempts = 5;
        for (int attempt = 1; ; attempt++)
        {
            var probe = new List<int>(1);
            IPEndPoint bound;
            try
            {
                bound = BindOne(ip, reusePort: false, probe, listen: false);
            }
            finally
            {
                foreach (var fd in probe)
                {
                    PosixIO.Close(fd);
                }
            }

            try
            {
                for (int i = 0; i < _reactors.Length; i++)
                {
                    BindOne(bound, reusePort: true, fds);
                }
                return bound;
            }
            catch (AddressInUseException) when (ip.Port == 0 && attempt < Attempts)
            {
                // Someone took the port between the probe and the group; pick another.
                foreach (var fd in fds)
                {
                    PosixIO.Close(fd);
                }
                fds.Clear();
            }
        }
    }

    private IPEndPoint BindOne(IPEndPoint ip, bool reusePort, List<int> fds, bool listen = true)
    {
        var family = ip.AddressFamily == AddressFamily.InterNetworkV6 ? SocketInterop.AF_INET6 : SocketInterop.AF_INET;
        var fd = Check(SocketInterop.Socket(family), ip);
        fds.Add(fd);
        Check(SocketInterop.SetOption(fd, SocketInterop.SOL_SOCKET, SocketInterop.SO_REUSEADDR, 1), ip);
        if (reusePort)
        {
            Check(SocketInterop.SetOption(fd, SocketInterop.SOL_SOCKET, SocketInterop.SO_REUSEPORT, 1), ip);
        }
        if (family == SocketInterop.AF_INET6)
        {
            // Dual mode for [::] only, as Kestrel's Sockets transport does.
            var v6Only = ip.Address.Equals(IPAddress.IPv6Any) ? 0 : 1;
            Check(SocketInterop.SetOption(fd, SocketInterop.IPPROTO_IPV6, SocketInterop.IPV6_V6ONLY, v6Only), ip);
        }
        Check(SocketInterop.Bind(fd, ip), ip);
        if (listen)
        {
            Check(SocketInterop.Listen(fd, _options.Backlog), ip);
        }
        return SocketInterop.GetLocalEndPoint(fd) as IPEndPoint ?? ip;
    }

    private static int Check(PosixResult result, EndPoint endPoint)
    {
        if (result.IsSuccess)
        {
            return result.IntValue;
        }
        if (result.Errno == Errnos.EADDRINUSE)
        {
            throw new AddressInUseException($"Failed to bind to address {endPoint}: address already in use.", SocketErrors.ToSocketException(result.Errno));
        }
        throw SocketErrors.ToSocketException(result.Errno);
    }

    /// <summary>Reactor thread of the accepting listening socket: sets the new fd up and queues it for Kestrel.</summary>
    public void OnAccepted(int fd, EpollReactor acceptingReactor)
    {
        if (_isTcp && _options.NoDelay)
        {
            SocketInterop.SetOption(fd, SocketInterop.IPPROTO_TCP, SocketInterop.TCP_NODELAY, 1);
        }
        // TCP_INQ (Linux 4.18): every recvmsg then says how much is left in the receive queue, which saves the
        // recv that would only return EAGAIN at the end of each read burst.
        var reportsQueue = _isTcp && SocketInterop.SetOption(fd, SocketInterop.IPPROTO_TCP, SocketInterop.TCP_INQ, 1).IsSuccess;

        // The end points are read here, while this thread alone owns the fd: once the connection is published to a
        // reactor, a failed registration or an early reset closes the fd, and its number may already name another
        // socket by the time Kestrel asks for the addresses.
        var local = SocketInterop.GetLocalEndPoint(fd);
        var shared = Volatile.Read(ref _lastLocalEndPoint);
        if (local is not null && local.Equals(shared))
        {
            // Connections to the same address share one object instead of holding equal copies.
            local = shared;
        }
        else if (local is not null)
        {
            Volatile.Write(ref _lastLocalEndPoint, local);
        }
        var remote = SocketInterop.GetRemoteEndPoint(fd);

        var reactor = _reusePort ? acceptingReactor : _shared ? LeastLoaded(acceptingReactor) : _group.NextForHandoff(_reactors);
        _group.AddConnection();
        reactor.AddAssignedConnection();
        var connection = new EpollConnection(fd, local, remote, reactor, _group, _options, Logger, reportsQueue, _isUnixStream);
        if (reactor == acceptingReactor)
        {
            connection.Register();
        }
        else
        {
            // Queued before the connection reaches Kestrel, so it runs before anything Kestrel schedules for it.
            reactor.Schedule(static state => ((EpollConnection)state!).Register(), connection);
        }

        if (!Queue.TryAdd(connection))
        {
            connection.Abort(new ConnectionAbortedException("The listener was unbound."));
        }
    }

    /// <summary>
    /// Shared accept: the connection goes to the reactor with the fewest connections among the accepting one and those
    /// known to be free: idle (blocked in <c>epoll_wait</c>), or past at least one <c>epoll_wait</c> since this listener
    /// last looked (its turns are moving). The kernel wakes one idle reactor per arrival, but the woken one accepts
    /// until EAGAIN, so a burst of connections would otherwise land on whichever woke first. A reactor held by a long
    /// request is not idle and its wait count stands still, so from the second look on it is given nothing.
    /// Accepting reactors race on <see cref="_waitsSeen"/> without a lock: a lost update only costs one look.
    /// </summary>
    private EpollReactor LeastLoaded(EpollReactor accepting)
    {
        var chosen = accepting;
        var fewest = accepting.AssignedConnections;
        for (int i = 0; i < _reactors.Length; i++)
        {
            var reactor = _reactors[i];
            if (reactor == accepting)
            {
                continue;
            }
            var waits = Volatile.Read(ref reactor.Counters.Waits);
            var moving = waits != Volatile.Read(ref _waitsSeen[i]);
            Volatile.Write(ref _waitsSeen[i], waits);
            if ((moving || reactor.IsIdle) && reactor.AssignedConnections < fewest)
            {
                chosen = reactor;
                fewest = reactor.AssignedConnections;
            }
        }
        return chosen;
    }

    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        var connection = await Queue.TakeAsync(cancellationToken).ConfigureAwait(false);
        if (connection is null)
        {
            return null;
        }
        connection.Start();
        return connection;
    }

    /// <summary>
    /// Closes the listening sockets (new connections are refused, or wait in the backlog of a socket another process
    /// holds too); <see cref="AcceptAsync"/> then hands out the connections already accepted and returns null.
    /// </summary>
    public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        var unbind = LazyInitializer.EnsureInitialized(ref _unbind, UnbindCoreAsync);
        return unbind.IsCompleted || !cancellationToken.CanBeCanceled ? new(unbind) : new(WaitUnlessCancelledAsync(unbind, cancellationToken));
    }

    /// <summary>
    /// Cancellation ends the wait, not the unbind: the closes are already queued on the reactors and finish without
    /// the caller. Kestrel disposes a server that was never stopped with an already-cancelled token; Sockets' unbind
    /// never observes it, so neither does this one throw for it.
    /// </summary>
    private static async Task WaitUnlessCancelledAsync(Task unbind, CancellationToken cancellationToken)
    {
        try
        {
            await unbind.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested && !unbind.IsFaulted)
        {
        }
    }

    private async Task UnbindCoreAsync()
    {
        var closes = new List<Task>(_sockets.Count);
        foreach (var socket in _sockets)
        {
            var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            socket.Reactor.Schedule(static state =>
            {
                var (s, tcs) = ((ListenSocket, TaskCompletionSource))state!;
                s.Close();
                tcs.TrySetResult();
            }, (socket, closed));
            // A reactor already stopped (the factory was disposed) closed its sockets on the way out.
            closes.Add(Task.WhenAny(closed.Task, socket.Reactor.Completion));
        }
        await Task.WhenAll(closes).ConfigureAwait(false);

        // Connections accepted from the kernel before the close still go to Kestrel: its accept loop takes them until
        // AcceptAsync returns null, and its shutdown then drains them like any other. Aborting them instead resets
        // connections whose requests were already sent (a proxy in front sees a reset; with a listening socket that
        // outlives the process, such as one inherited from systemd, the next process would have served them).
        Queue.CompleteAdding();
        if (_unixSocketPath is not null)
        {
            // Kestrel's Sockets transport deletes the socket file it created when it stops listening.
            try
            {
                File.Delete(_unixSocketPath);
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await UnbindAsync().ConfigureAwait(false);
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            foreach (var connection in Queue.Complete())
            {
                connection.Abort(new ConnectionAbortedException("The listener was disposed before the connection was accepted."));
            }
            Disposed?.Invoke(this);
            // With no connection left this was the last reference: return once the reactors have stopped.
            await _group.Release().ConfigureAwait(false);
        }
    }
}
