using EpollTransport.Interop;
using EpollTransport.Posix;
using EpollTransport.Reactor;

namespace EpollTransport.Listening;

/// <summary>
/// A listening fd registered with one reactor. Accepts until EAGAIN, within a burst budget per turn, and stops
/// (without spinning) when Kestrel's queue is full or the process is out of file descriptors. With
/// <see cref="EpollAcceptMode.Shared"/> one fd has a <see cref="ListenSocket"/> in every reactor, each registered with
/// <c>EPOLLEXCLUSIVE</c>, and the last of them to close closes the fd.
/// </summary>
internal sealed class ListenSocket : IEpollHandler
{
    /// <summary>
    /// How long accepting pauses when the process or kernel is out of fds or memory. The pending connection stays
    /// in the backlog and, under edge-triggered epoll, no new edge may ever come for it, so the retry must come
    /// from the loop's timer.
    /// </summary>
    private static readonly TimeSpan ExhaustionRetryDelay = TimeSpan.FromMilliseconds(50);

    private readonly int _fd;
    private readonly SharedFd _owner;
    private readonly EpollReactor _reactor;
    private readonly EpollConnectionListener _listener;
    private readonly int _budget;
    private bool _readable;
    private bool _waiting;
    private bool _closed;
    private bool _exhaustionLogged;

    public ListenSocket(SharedFd owner, EpollReactor reactor, EpollConnectionListener listener, int budget)
    {
        _owner = owner;
        _fd = owner.Fd;
        _reactor = reactor;
        _listener = listener;
        _budget = budget;
    }

    public EpollReactor Reactor => _reactor;

    public ulong Token { get; set; }

    public bool IsReady { get; set; }

    public bool IsSendQueued { get; set; }

    /// <summary>Reactor thread.</summary>
    public void Register()
    {
        var result = _owner.IsShared
            ? _reactor.Register(this, _fd, EpollInterop.EPOLLIN | EpollInterop.EPOLLET | EpollInterop.EPOLLEXCLUSIVE)
            : _reactor.Register(this, _fd);
        if (result.Errno == Errnos.EINVAL && _owner.IsShared)
        {
            // A kernel before 4.5 has no EPOLLEXCLUSIVE: every reactor is woken and the first to accept wins.
            result = _reactor.Register(this, _fd, EpollInterop.EPOLLIN | EpollInterop.EPOLLET);
        }
        if (!result.IsSuccess)
        {
            EpollTransportLog.AcceptError(_listener.Logger, _listener.EndPoint, result.ToString());
            Close();
        }
    }

    public bool OnEvents(uint events)
    {
        if ((events & (EpollInterop.EPOLLIN | EpollInterop.EPOLLERR | EpollInterop.EPOLLHUP)) != 0)
        {
            _readable = true;
        }
        return _readable && !_waiting && !_closed;
    }

    public bool Run()
    {
        if (!_readable || _waiting || _closed)
        {
            return false;
        }

        var queue = _listener.Queue;
        for (int i = 0; i < _budget; i++)
        {
            if (!queue.HasRoom)
            {
                _waiting = true;
                queue.Park(this);
                return false;
            }

            var result = SocketInterop.Accept(_fd);
            if (result.IsSuccess && result.Value >= _listener.FileDescriptorCeiling)
            {
                // fds are allocated lowest first: every fd below this one is taken, and only the reserve is left.
                SocketInterop.SetLingerZero(result.IntValue);
                PosixIO.Close(result.IntValue);
                PauseExhausted("the file descriptor reserve was reached");
                return false;
            }
            if (result.IsSuccess)
            {
                _reactor.Counters.Accepts++;
                _exhaustionLogged = false;
                _listener.OnAccepted(result.IntValue, _reactor);
                continue;
            }
            if (result.WouldBlock)
            {
                _readable = false;
                return false;
            }
            if (Errnos.IsTransientAcceptError(result.Errno))
            {
                continue;
            }
            if (Errnos.IsResourceExhausted(result.Errno))
            {
                PauseExhausted(result.ToString());
                return false;
            }

            // Anything else is not about one connection; back off rather than spin on it.
            EpollTransportLog.AcceptError(_listener.Logger, _listener.EndPoint, result.ToString());
            PauseFor(ExhaustionRetryDelay);
            return false;
        }
        return true;
    }

    /// <summary>Any thread: accepting may go on (the queue has room, or the retry delay passed).</summary>
    public void Resume() => _reactor.Schedule(static state => ((ListenSocket)state!).ResumeOnLoop(), this);

    private void ResumeOnLoop()
    {
        _waiting = false;
        if (_readable && !_closed)
        {
            _reactor.SetReady(this);
        }
    }

    /// <summary>Reactor thread: unregisters and closes the fd, once.</summary>
    public void Close()
    {
        if (_closed)
        {
            return;
        }
        _closed = true;
        if (_owner.IsShared)
        {
            // The fd stays open in the other reactors' sets until the last of them closes it.
            _reactor.Unregister(this, _fd);
        }
        else
        {
            _reactor.Unregister(this);
        }
        if (_owner.Release())
        {
            PosixIO.Close(_fd);
        }
    }

    public void Send()
    {
    }

    public void OnReactorStopping() => Close();

    private void PauseExhausted(string reason)
    {
        // Once per episode: the retries every few milliseconds would flood the log.
        if (!_exhaustionLogged)
        {
            _exhaustionLogged = true;
            EpollTransportLog.AcceptFileDescriptorsExhausted(_listener.Logger, _listener.EndPoint, reason,
                (int)ExhaustionRetryDelay.TotalMilliseconds);
        }
        PauseFor(ExhaustionRetryDelay);
    }

    private void PauseFor(TimeSpan delay)
    {
        _waiting = true;
        _reactor.RunAfter(delay, static state => ((ListenSocket)state!).ResumeOnLoop(), this);
    }
}

/// <summary>A listening fd and the count of the <see cref="ListenSocket"/>s (one per reactor, or one) that still use it.</summary>
internal sealed class SharedFd(int fd, int users)
{
    private int _users = users;

    public int Fd { get; } = fd;

    /// <summary>Registered in more than one reactor (<see cref="EpollAcceptMode.Shared"/> with several reactors).</summary>
    public bool IsShared { get; } = users > 1;

    /// <summary>Any thread: one user is done; true for the last, which closes the fd.</summary>
    public bool Release() => Interlocked.Decrement(ref _users) == 0;
}
