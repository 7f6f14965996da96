using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace EpollTransport.Reactor;

/// <summary>
/// The reactors of one transport factory. They start with the first listener and stop when the last listener
/// and the last connection are gone (connections outlive their listener, as with Sockets), so a host that is
/// stopped and started again in one process leaves no threads behind.
/// </summary>
internal sealed class ReactorGroup : IAsyncDisposable
{
    private readonly EpollTransportOptions _options;
    private readonly IMemoryPoolFactory<byte> _memoryPoolFactory;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private EpollReactor[]? _reactors;
    private int _references;
    private int _nextHandoff;
    private Task _stopped = Task.CompletedTask;
    private bool _disposed;

    public ReactorGroup(EpollTransportOptions options, IMemoryPoolFactory<byte> memoryPoolFactory, ILogger logger)
    {
        _options = options;
        _memoryPoolFactory = memoryPoolFactory;
        _logger = logger;
    }

    /// <summary>The running reactors, or an empty array (for metrics).</summary>
    public EpollReactor[] Current => Volatile.Read(ref _reactors) ?? [];

    /// <summary>
    /// Test hook: runs inside <see cref="Acquire"/>, under the lock, as it takes the listener's reference, so that a
    /// test can let connections come and go at that very point. Never set in production (one null test on a bind).
    /// </summary>
    public Action? AcquireObserver { get; set; }

    /// <summary>Takes a reference for a listener, starting the reactors if none run.</summary>
    public EpollReactor[] Acquire()
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_reactors is null)
            {
                var reactors = new EpollReactor[_options.ReactorCount];
                try
                {
                    for (int i = 0; i < reactors.Length; i++)
                    {
                        reactors[i] = new EpollReactor(i, _options.MaxEventsPerWait,
                            _memoryPoolFactory.Create(new MemoryPoolOptions { Owner = "EpollTransport" }), _logger);
                        reactors[i].Start();
                    }
                }
                catch
                {
                    // Out of fds or memory part way: stop the reactors already running (a started loop releases its fds).
                    foreach (var started in reactors)
                    {
                        started?.Stop();
                    }
                    throw;
                }
                Volatile.Write(ref _reactors, reactors);
            }
            AcquireObserver?.Invoke();
            // Atomic although under the lock: connections add and drop references on the reactor threads without
            // taking it, and a lost update either stops the reactors under a listener or keeps them alive for ever.
            Interlocked.Increment(ref _references);
            return _reactors;
        }
    }

    /// <summary>Takes a reference for a connection; a listener's reference already keeps the reactors alive.</summary>
    public void AddConnection() => Interlocked.Increment(ref _references);

    /// <summary>
    /// Drops a reference; the last one stops the reactors. Returns when they have stopped if this call stopped them
    /// (a caller on a reactor thread must not wait for it), else a completed task.
    /// </summary>
    public Task Release()
    {
        if (Interlocked.Decrement(ref _references) != 0)
        {
            return Task.CompletedTask;
        }
        lock (_lock)
        {
            if (Volatile.Read(ref _references) != 0 || _reactors is not { } reactors)
            {
                return Task.CompletedTask;
            }
            _reactors = null;
            foreach (var reactor in reactors)
            {
                reactor.Stop();
            }
            _stopped = Task.WhenAll(_stopped, Task.WhenAll(reactors.Select(r => r.Completion)));
            return _stopped;
        }
    }

    /// <summary>Picks the reactor for a connection accepted by a single (non-SO_REUSEPORT) listener.</summary>
    public EpollReactor NextForHandoff(EpollReactor[] reactors)
        => reactors[(int)((uint)Interlocked.Increment(ref _nextHandoff) % (uint)reactors.Length)];

    public async ValueTask DisposeAsync()
    {
        Task stopped;
        lock (_lock)
        {
            _disposed = true;
            if (_reactors is { } reactors)
            {
                _reactors = null;
                foreach (var reactor in reactors)
                {
                    reactor.Stop();
                }
                _stopped = Task.WhenAll(_stopped, Task.WhenAll(reactors.Select(r => r.Completion)));
            }
            stopped = _stopped;
        }
        // Also the reactors the last Release stopped: disposing returns only once every loop thread is gone.
        await stopped.ConfigureAwait(false);
    }
}
