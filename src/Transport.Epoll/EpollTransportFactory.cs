using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using EpollTransport.Listening;
using EpollTransport.Reactor;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace EpollTransport;

/// <summary>
/// Kestrel's entry to the epoll transport: binds IP end points, Unix domain sockets and handed-in listening fds
/// (<see cref="FileHandleEndPoint"/>). Every other end point falls through to the next transport (Sockets).
/// </summary>
public sealed class EpollTransportFactory : IConnectionListenerFactory, IConnectionListenerFactorySelector, IAsyncDisposable, IDisposable
{
    private readonly EpollTransportOptions _options;
    private readonly ILogger _logger;
    private readonly ReactorGroup _group;
    private readonly EpollTransportMetrics _metrics;
    private readonly Lock _listenersLock = new();
    private readonly HashSet<EpollConnectionListener> _listeners = [];

    /// <summary>Creates the factory; Kestrel's DI does this when <c>UseEpollTransport</c> registered it.</summary>
    /// <param name="options">The transport options.</param>
    /// <param name="loggerFactory">Creates the <c>EpollTransport</c> logger.</param>
    /// <param name="memoryPoolFactory">Kestrel's memory pool factory (pinned blocks, with eviction).</param>
    /// <param name="meterFactory">Creates the <c>EpollTransport</c> meter; a standalone meter when absent.</param>
    public EpollTransportFactory(
        IOptions<EpollTransportOptions> options,
        ILoggerFactory loggerFactory,
        IMemoryPoolFactory<byte> memoryPoolFactory,
        IMeterFactory? meterFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        ArgumentNullException.ThrowIfNull(memoryPoolFactory);

        _options = options.Value;
        _logger = loggerFactory.CreateLogger("EpollTransport");
        _group = new ReactorGroup(_options, memoryPoolFactory, _logger);
        _metrics = new EpollTransportMetrics(meterFactory, () => _group.Current);
    }

    /// <inheritdoc />
    public bool CanBind(EndPoint endpoint) => endpoint is IPEndPoint or UnixDomainSocketEndPoint or FileHandleEndPoint;

    /// <inheritdoc />
    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        cancellationToken.ThrowIfCancellationRequested();
        var listener = new EpollConnectionListener(endpoint, _options, _group, _logger);
        listener.Bind();
        lock (_listenersLock)
        {
            _listeners.Add(listener);
        }
        listener.Disposed = Forget;
        return new ValueTask<IConnectionListener>(listener);
    }

    /// <summary>
    /// Stops accepting on every end point this factory bound, before Kestrel itself stops: the listening sockets close,
    /// so new connections are refused, or wait in the backlog of a socket that another process still holds (one
    /// inherited from systemd socket activation, which the next process of the service accepts from). Connections
    /// already accepted still go to Kestrel, and every open connection is served as before until the server stops.
    /// For a drain before shutdown behind a proxy: stop accepting, answer with <c>Connection: close</c> for a while,
    /// then let the host stop (the sample's <c>--drain</c>).
    /// </summary>
    /// <param name="cancellationToken">Ends the wait for the sockets to close, not the closing.</param>
    /// <returns>A task that completes when every listening socket is closed.</returns>
    public Task StopAcceptingAsync(CancellationToken cancellationToken = default)
    {
        EpollConnectionListener[] listeners;
        lock (_listenersLock)
        {
            listeners = [.. _listeners];
        }
        return Task.WhenAll(listeners.Select(l => l.UnbindAsync(cancellationToken).AsTask()));
    }

    private void Forget(EpollConnectionListener listener)
    {
        lock (_listenersLock)
        {
            _listeners.Remove(listener);
        }
    }

    internal ReactorGroup Reactors => _group;

    /// <summary>Stops every reactor; connections still open are reset.</summary>
    public async ValueTask DisposeAsync()
    {
        await _group.DisposeAsync().ConfigureAwait(false);
        _metrics.Dispose();
    }

    /// <summary>Stops every reactor; connections still open are reset.</summary>
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();
}
