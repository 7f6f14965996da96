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
        return new ValueTask<IConnectionListener>(listener);
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
