using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using EpollTransport.Connections;
using EpollTransport.Interop;
using EpollTransport.Posix;
using Microsoft.Extensions.Logging;

namespace EpollTransport.Reactor;

/// <summary>
/// One event loop on one thread: a synchronous event demultiplexer (<c>epoll_wait</c>), a dispatcher (the ready
/// list) and handlers that never block. It is also a <see cref="PipeScheduler"/>, so the transport side of every
/// connection's pipes runs here, and other threads hand it work through an MPSC queue.
/// </summary>
/// <remarks>
/// One turn: (1) <c>epoll_wait</c>, with timeout 0 while anything is pending; (2) turn every event into handler
/// flags and collect the handlers that can run; (3) serve the ready list round-robin, each handler within its
/// budget; (4) run the work queue; (5) flush the deferred sends, one <c>sendmsg</c> per connection.
/// </remarks>
internal sealed class EpollReactor : PipeScheduler
{
    /// <summary>epoll data of the wake-up eventfd; <see cref="HandlerTable"/> never issues 0.</summary>
    private const ulong WakeupToken = 0;

    /// <summary>Work items run per turn, so that a flood of posts cannot starve I/O.</summary>
    private const int WorkItemsPerTurn = 1024;

    private readonly int _epollFd;
    private readonly ReactorWakeup _wakeup;
    private readonly ConcurrentQueue<WorkItem> _work = new();
    private readonly ReadyList _ready = new();
    private readonly List<TimedWorkItem> _timers = new();
    private readonly HandlerTable _handlers = new();
    private int _assignedConnections;
    private List<IEpollHandler> _sends = new();
    private List<IEpollHandler> _sendsInFlight = new();
    private readonly int _maxEvents;
    private readonly ILogger _logger;
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Thread? _thread;
    private int _threadId;
    private bool _stopping;
    /// <summary>Set as shutdown begins: no fd joins the epoll set any more (it would never be closed).</summary>
    private bool _closing;
    /// <summary>
    /// 1 while someone runs the work queue outside the turns: the loop from its shutdown until its last drain, then a
    /// thread-pool worker for items posted after the stop. One at a time, so that such items, like those on the loop,
    /// never run concurrently with each other.
    /// </summary>
    private int _drainingAfterStop = 1;
    private ConnectionPipeOptions? _pipeOptions;
    private readonly string _threadName;

    /// <summary>
    /// Makes the reactor (its epoll fd and eventfd); <see cref="Start"/> starts its thread, named
    /// <paramref name="threadName"/> or <c>epoll-reactor-{id}</c>. <paramref name="loopOwnsReactor"/> lets <see cref="Loop"/>
    /// stop the reactor: a loop started on its own rather than one of a transport's reactors.
    /// </summary>
    public EpollReactor(int id, int maxEvents, MemoryPool<byte> memoryPool, ILogger logger, string? threadName = null, bool loopOwnsReactor = false)
    {
        Id = id;
        MemoryPool = memoryPool;
        _maxEvents = maxEvents;
        _logger = logger;
        _threadName = threadName ?? $"epoll-reactor-{id}";
        Loop = new EpollLoop(this, loopOwnsReactor);

        var epoll = EpollInterop.Create();
        if (!epoll.IsSuccess)
        {
            throw SocketErrors.ToSocketException(epoll.Errno);
        }
        _epollFd = epoll.IntValue;
        _wakeup = new ReactorWakeup(Counters);
        var added = EpollInterop.Add(_epollFd, _wakeup.EventFd, EpollInterop.EPOLLIN | EpollInterop.EPOLLET, WakeupToken);
        if (!added.IsSuccess)
        {
            PosixIO.Close(_epollFd);
            _wakeup.Dispose();
            throw SocketErrors.ToSocketException(added.Errno);
        }
    }

    public int Id { get; }

    /// <summary>Any thread: the loop waits for events, with nothing to run (a stale answer is possible).</summary>
    public bool IsIdle => _wakeup.IsBlocking;

    /// <summary>
    /// Any thread: connections given to this reactor and not yet closed, counted when the accepting thread picks the
    /// reactor (before the connection is registered here), so that a burst of hand-offs sees each one at once. The
    /// <c>epoll.reactor.connections.active</c> gauge and the shared accept's least-loaded choice both read it.
    /// </summary>
    public int AssignedConnections => Volatile.Read(ref _assignedConnections);

    /// <summary>Any thread: a connection was given to this reactor.</summary>
    public void AddAssignedConnection() => Interlocked.Increment(ref _assignedConnections);

    /// <summary>Any thread: a connection given to this reactor closed.</summary>
    public void RemoveAssignedConnection() => Interlocked.Decrement(ref _assignedConnections);

    /// <summary>The public face of this reactor for other components (<see cref="EpollLoop.Current"/>).</summary>
    public EpollLoop Loop { get; }

    public MemoryPool<byte> MemoryPool { get; }

    /// <summary>
    /// The input and output <see cref="PipeOptions"/> of this reactor's connections. A <see cref="Pipe"/> keeps its
    /// options, so sharing them saves two objects per connection. Built on first use from the transport's options
    /// (one set per reactor group); any thread.
    /// </summary>
    public ConnectionPipeOptions PipeOptionsFor(EpollTransportOptions options)
    {
        var current = Volatile.Read(ref _pipeOptions);
        if (current is null || !ReferenceEquals(current.Source, options))
        {
            current = new ConnectionPipeOptions(options, this);
            Volatile.Write(ref _pipeOptions, current);
        }
        return current;
    }

    public ReactorCounters Counters { get; } = new();

    /// <summary>The sends that flushing threads make for this reactor's connections; any thread.</summary>
    public WriteThroughCounters WriteThroughCounters { get; } = new();

    public ReactorWakeup Wakeup => _wakeup;

    /// <summary>Test hooks for rare paths; see <see cref="IReactorObserver"/>.</summary>
    public IReactorObserver? Observer { get; set; }

    /// <summary>Completes when the loop thread has exited and released its fds.</summary>
    public Task Completion => _completion.Task;

    public bool IsOnReactorThread => Environment.CurrentManagedThreadId == _threadId;

    public void Start()
    {
        _thread = new Thread(RunLoop)
        {
            IsBackground = true,
            Name = _threadName,
        };
        _thread.UnsafeStart();
    }

    /// <summary>
    /// Queues work for the loop; safe from any thread. Once the loop has stopped the item still runs, on the thread
    /// pool, after the items posted before it and never concurrently with them.
    /// </summary>
    /// <remarks>
    /// Why run rather than throw: this is the <see cref="PipeScheduler"/> of the connections' pipes. The pipes call it
    /// from an application's <c>Complete</c> or <c>FlushAsync</c>; an exception there would surface in code that
    /// did nothing wrong and leave the pipe's continuation (and whoever awaits it) hanging. The items the transport
    /// posts stay safe off the loop: their connection was closed by the shutdown (so they find nothing to do), and
    /// <see cref="Register(IEpollHandler, int)"/> refuses, so a late registration closes its own fd instead of touching the closed
    /// epoll fd's number.
    /// </remarks>
    public override void Schedule(Action<object?> action, object? state)
    {
        if (!TrySchedule(action, state))
        {
            RunAfterStop(new WorkItem(action, state));
        }
    }

    /// <summary>
    /// Queues work for the loop unless it has stopped; safe from any thread. True: the item runs on the loop thread,
    /// once. False: it will not run.
    /// </summary>
    public bool TrySchedule(Action<object?> action, object? state)
    {
        // The loop looks at its queue before it blocks and drains it before it closes: a post from the loop itself
        // needs neither a wake-up nor to be counted in.
        if (IsOnReactorThread)
        {
            _work.Enqueue(new WorkItem(action, state));
            return true;
        }
        if (!_wakeup.TryEnter())
        {
            return false;
        }
        try
        {
            _work.Enqueue(new WorkItem(action, state));
            _wakeup.Wake();
        }
        finally
        {
            _wakeup.Exit();
        }
        return true;
    }

    /// <summary>Asks the loop to close whatever is still registered and exit; a loop that has stopped has nothing to do.</summary>
    public void Stop() => TrySchedule(static state => ((EpollReactor)state!)._stopping = true, this);

    /// <summary>
    /// Runs <paramref name="action"/> on the loop after <paramref name="delay"/>. Loop thread only. The loop keeps
    /// its own deadlines (the epoll_wait timeout) rather than using a <see cref="Timer"/>: timers are needed when
    /// the process is out of file descriptors, exactly when starting the runtime's timer thread can fail.
    /// </summary>
    public void RunAfter(TimeSpan delay, Action<object?> action, object? state)
        => _timers.Add(new TimedWorkItem(Environment.TickCount64 + (long)delay.TotalMilliseconds, new WorkItem(action, state)));

    /// <summary>Registers <paramref name="fd"/> once, edge-triggered for both directions. Loop thread only.</summary>
    public PosixResult Register(IEpollHandler handler, int fd)
        => Register(handler, fd, EpollInterop.EPOLLIN | EpollInterop.EPOLLOUT | EpollInterop.EPOLLRDHUP | EpollInterop.EPOLLET);

    /// <summary>Registers <paramref name="fd"/> for <paramref name="events"/> (a listening socket shared by every reactor). Loop thread only.</summary>
    public PosixResult Register(IEpollHandler handler, int fd, uint events)
    {
        if (_closing)
        {
            // The epoll fd is closed or about to be (and its number may already be another fd's): the caller closes
            // its fd, as after any failed registration.
            return PosixResult.FromErrno(Errnos.EBADF);
        }
        if (Observer?.RefusesRegistration(handler, fd) == true)
        {
            return PosixResult.FromErrno(Errnos.ENOSPC);
        }
        var token = _handlers.Add(handler);
        var result = EpollInterop.Add(_epollFd, fd, events, token);
        if (!result.IsSuccess)
        {
            _handlers.Remove(token);
        }
        return result;
    }

    /// <summary>
    /// Forgets the handler. The caller closes the fd, which also removes it from the epoll set; events of this
    /// registration still queued resolve to nothing through the token's generation. Loop thread only.
    /// </summary>
    public void Unregister(IEpollHandler handler) => _handlers.Remove(handler.Token);

    /// <summary>
    /// Forgets the handler and removes <paramref name="fd"/> from this reactor's epoll set, for an fd that stays open
    /// in other sets: without the removal this set would still take its events (and, with <c>EPOLLEXCLUSIVE</c>, the
    /// wake-ups that should go to another reactor). Loop thread only.
    /// </summary>
    public void Unregister(IEpollHandler handler, int fd)
    {
        _handlers.Remove(handler.Token);
        EpollInterop.Delete(_epollFd, fd);
    }

    /// <summary>Puts a handler on the ready list without an epoll event (e.g. reading resumes). Loop thread only.</summary>
    public void SetReady(IEpollHandler handler) => _ready.Add(handler);

    /// <summary>Handlers waiting on the ready list for their next turn; read by the metrics (a stale read is fine).</summary>
    public int ReadyCount => _ready.Count;

    /// <summary>Defers a handler's send to the end of this turn. Loop thread only.</summary>
    public void QueueSend(IEpollHandler handler)
    {
        if (!handler.IsSendQueued)
        {
            handler.IsSendQueued = true;
            _sends.Add(handler);
        }
    }

    private void RunLoop()
    {
        _threadId = Environment.CurrentManagedThreadId;
        EpollLoop.SetCurrent(Loop);
        var events = new EpollEventBuffer(_maxEvents);
        try
        {
            while (!_stopping)
            {
                var result = _ready.Count == 0 && _sends.Count == 0
                    ? _wakeup.BlockUnlessWorkQueued(events, _epollFd, _work, _timers.Count == 0 ? -1 : MillisecondsToNextTimer())
                    : events.Wait(_epollFd, 0);
                if (!result.IsSuccess)
                {
                    throw SocketErrors.ToSocketException(result.Errno);
                }

                Collect(events, result.IntValue);
                ServeReadyList();
                RunDueTimers();
                RunWorkQueue();
                FlushSends();
            }
        }
        catch (Exception ex)
        {
            EpollTransportLog.ReactorFailed(_logger, Id, ex);
        }
        finally
        {
            Shutdown();
            events.Dispose();
            EpollLoop.SetCurrent(null);
        }
    }

    private void Collect(EpollEventBuffer events, int count)
    {
        Counters.Waits++;
        Counters.Events += count;
        for (int i = 0; i < count; i++)
        {
            var token = events.DataAt(i);
            if (token == WakeupToken)
            {
                _wakeup.Drain();
                continue;
            }
            var handler = _handlers.Find(token);
            if (handler is not null && handler.OnEvents(events.EventsAt(i)))
            {
                _ready.Add(handler);
            }
        }
    }

    private void ServeReadyList()
    {
        // Only the handlers on the list when the turn began: one that spent its budget waits behind the others,
        // and behind the handlers of the next epoll_wait.
        for (int n = _ready.Count; n > 0; n--)
        {
            var handler = _ready.Take();
            bool more;
            try
            {
                more = handler.Run();
            }
            catch (Exception ex)
            {
                EpollTransportLog.HandlerFailed(_logger, Id, ex);
                more = false;
            }
            if (more)
            {
                Counters.BudgetExhaustions++;
                Observer?.OnBudgetExhausted(handler);
                _ready.Add(handler);
            }
        }
    }

    private void RunWorkQueue(int limit = WorkItemsPerTurn)
    {
        for (int n = limit; n > 0 && _work.TryDequeue(out var item); n--)
        {
            try
            {
                item.Action(item.State);
            }
            catch (Exception ex)
            {
                EpollTransportLog.HandlerFailed(_logger, Id, ex);
            }
        }
    }

    private int MillisecondsToNextTimer()
    {
        long next = long.MaxValue;
        foreach (var timer in _timers)
        {
            next = Math.Min(next, timer.Due);
        }
        return (int)Math.Clamp(next - Environment.TickCount64, 0, int.MaxValue);
    }

    private void RunDueTimers()
    {
        if (_timers.Count == 0)
        {
            return;
        }
        var now = Environment.TickCount64;
        for (int i = _timers.Count - 1; i >= 0; i--)
        {
            var timer = _timers[i];
            if (timer.Due <= now)
            {
                _timers.RemoveAt(i);
                _work.Enqueue(timer.Work);
            }
        }
    }

    private void FlushSends()
    {
        if (_sends.Count == 0)
        {
            return;
        }
        // Swap lists: a handler that queues itself again while sending (more output already flushed) is served
        // next turn, which keeps it to one sendmsg per connection per turn.
        (_sends, _sendsInFlight) = (_sendsInFlight, _sends);
        foreach (var handler in _sendsInFlight)
        {
            handler.IsSendQueued = false;
            try
            {
                handler.Send();
            }
            catch (Exception ex)
            {
                EpollTransportLog.HandlerFailed(_logger, Id, ex);
            }
        }
        _sendsInFlight.Clear();
    }

    private void Shutdown()
    {
        _closing = true;
        try
        {
            foreach (var handler in _handlers.Snapshot())
            {
                try
                {
                    handler.OnReactorStopping();
                }
                catch (Exception ex)
                {
                    EpollTransportLog.HandlerFailed(_logger, Id, ex);
                }
            }
        }
        finally
        {
            // No producer gets in from now on, and those in flight have enqueued and written before this returns:
            // what they posted (and what the closes above posted, pipe continuations) runs here, once, and only
            // then is the eventfd closed.
            _wakeup.Close();
            RunWorkQueue(int.MaxValue);
            // From here Schedule hands items to the thread pool even from this thread (managed thread ids are reused).
            _threadId = 0;
            PosixIO.Close(_epollFd);
            _wakeup.Dispose();
            MemoryPool.Dispose();
            _completion.TrySetResult();
            // Items posted with Schedule after the close and after the drain above.
            FinishDrainAfterStop();
        }
    }

    /// <summary>After the stop: queues the item and makes sure one (and only one) thread-pool worker runs the queue.</summary>
    private void RunAfterStop(WorkItem item)
    {
        _work.Enqueue(item);
        DrainAfterStopUnlessDraining();
    }

    private void DrainAfterStopUnlessDraining()
    {
        if (Interlocked.CompareExchange(ref _drainingAfterStop, 1, 0) == 0)
        {
            System.Threading.ThreadPool.UnsafeQueueUserWorkItem(static reactor =>
            {
                reactor.RunWorkQueue(int.MaxValue);
                reactor.FinishDrainAfterStop();
            }, this, preferLocal: false);
        }
    }

    /// <summary>Lets go of the queue, and takes it back if an item came after the last dequeue.</summary>
    private void FinishDrainAfterStop()
    {
        Interlocked.Exchange(ref _drainingAfterStop, 0);
        if (!_work.IsEmpty)
        {
            DrainAfterStopUnlessDraining();
        }
    }

    private readonly record struct WorkItem(Action<object?> Action, object? State);

    private readonly record struct TimedWorkItem(long Due, WorkItem Work);
}
