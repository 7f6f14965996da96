using System.Diagnostics.Metrics;
using System.Net;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Xunit.Abstractions;

namespace EpollTransport.Tests.Faults;

/// <summary>
/// A <see cref="KestrelHost"/> for the fault tests, with what they need on top: Kestrel's limits set by the test,
/// a count of the connections Kestrel holds (a connection middleware, so it reads the same on every transport) and
/// the transport's own count of registered connections.
/// </summary>
internal sealed class FaultServer : IAsyncDisposable
{
    private FaultServer(KestrelHost host, ConnectionTracker connections)
    {
        Host = host;
        Connections = connections;
    }

    public KestrelHost Host { get; }

    public Uri BaseAddress => Host.BaseAddress;

    public string Transport => Host.Transport;

    public bool IsEpoll => Transport != KestrelHost.Sockets;

    /// <summary>The connections Kestrel has taken from the transport and not yet finished with.</summary>
    public ConnectionTracker Connections { get; }

    /// <summary>
    /// What the server logged at Error or above, less one error of Kestrel's own that a request body cut short by the
    /// client provokes now and then on every transport, Sockets included: Kestrel's automatic draining of the body
    /// after the app returns fails with "Reading is already in progress" (event 67).
    /// </summary>
    public IEnumerable<string> UnexpectedErrors => Host.LoggedErrors.Where(e =>
        !(e.Contains("Microsoft.AspNetCore.Server.Kestrel[67]", StringComparison.Ordinal)
          && e.Contains("automatic draining of the request body failed", StringComparison.Ordinal)));

    /// <summary>The transport's <c>MaxWriteBufferSize</c>: how much the app may write ahead of the socket.</summary>
    public long MaxWriteBufferSize => IsEpoll
        ? Host.Services.GetRequiredService<IOptions<EpollTransportOptions>>().Value.MaxWriteBufferSize ?? long.MaxValue
        : Host.Services.GetRequiredService<IOptions<SocketTransportOptions>>().Value.MaxWriteBufferSize ?? long.MaxValue;

    /// <summary>Starts Kestrel on <paramref name="transport"/>; <paramref name="limits"/> sets Kestrel's limits first.</summary>
    public static async Task<FaultServer> StartAsync(string transport, Action<WebApplication> map, ITestOutputHelper output,
        Action<KestrelServerLimits>? limits = null)
    {
        var connections = new ConnectionTracker();
        var host = await KestrelHost.StartAsync(transport, app =>
        {
            // Kestrel reads its options when the server starts, after this callback: the same options instance.
            var kestrel = app.Services.GetRequiredService<IOptions<KestrelServerOptions>>().Value;
            limits?.Invoke(kestrel.Limits);
            // Endpoint defaults apply to the UseUrls address too.
            kestrel.ConfigureEndpointDefaults(listen => listen.Use(connections.Middleware));
            map(app);
        }, output);
        return new FaultServer(host, connections);
    }

    /// <summary>
    /// The transport's count of connections given to its reactors and not yet closed (the <c>EpollTransport</c> meter's
    /// <c>epoll.reactor.connections.active</c>, summed over the reactors of this server only).
    /// </summary>
    public long ReactorActiveConnections()
    {
        var meterFactory = Host.Services.GetRequiredService<IMeterFactory>();
        long total = 0;
        var seen = false;
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == "EpollTransport" && ReferenceEquals(instrument.Meter.Scope, meterFactory)
                    && instrument.Name == "epoll.reactor.connections.active")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) =>
        {
            total += value;
            seen = true;
        });
        listener.Start();
        listener.RecordObservableInstruments();
        Assert.True(seen, "The EpollTransport meter of this server reported no epoll.reactor.connections.active.");
        return total;
    }

    /// <summary>
    /// Waits until Kestrel holds no connection and has taken <paramref name="total"/> in all, then until the
    /// transport holds none either; fails with the counts if that takes longer than <see cref="TestTimeouts.WaitLimit"/>.
    /// </summary>
    public async Task AssertAllConnectionsGoneAsync(long total)
    {
        try
        {
            await Connections.WhenIdleAsync(total).WaitAsync(WaitLimit);
        }
        catch (TimeoutException)
        {
            Assert.Fail($"Kestrel still holds {Connections.Open} connection(s) of {Connections.Total} taken ({total} expected), "
                + $"from client ports [{string.Join(", ", Connections.OpenPorts)}]"
                + (IsEpoll ? $"; the epoll reactors hold {ReactorActiveConnections()}." : "."));
        }
        Assert.Equal(total, Connections.Total);
        await AssertNoTransportConnectionsLeftAsync();
    }

    /// <summary>
    /// After <see cref="ConnectionTracker.WhenIdleAsync"/>: the epoll transport also has no connection left. Kestrel
    /// finishes with a connection (the tracker's event) a moment before it disposes the transport's side, and nothing
    /// signals that last step, so it is polled: at most 3000 times, bounded by <see cref="TestTimeouts.WaitLimit"/>.
    /// </summary>
    public async Task AssertNoTransportConnectionsLeftAsync()
    {
        if (!IsEpoll)
        {
            return;
        }
        // Kestrel's ConnectionClosed comes a moment before the reactor unregisters the fd, and nothing signals that
        // last step: a bounded poll, as ResourceLeakTests does for thread exits.
        long active = 0;
        var gone = await Task.Run(() => SpinWait.SpinUntil(() => (active = ReactorActiveConnections()) == 0, WaitLimit));
        Assert.True(gone, $"The epoll reactors still hold {active} connection(s).");
    }

    public ValueTask DisposeAsync() => Host.DisposeAsync();

    /// <summary>Maps <c>GET /ok/{value}</c>, which answers its value as text with a Content-Length.</summary>
    public static void MapOk(WebApplication app)
        => app.MapGet("/ok/{value}", context => WriteTextAsync(context.Response, (string)context.Request.RouteValues["value"]!));

    /// <summary>One keep-alive round trip to <c>/ok/{value}</c>, checked.</summary>
    public static async Task AssertOkAsync(RawHttpClient client, string value, CancellationToken cancellationToken)
    {
        var response = await client.GetAsync($"/ok/{value}", cancellationToken);
        Assert.Equal(200, response.StatusCode);
        Assert.Equal(value, Encoding.ASCII.GetString(response.Body));
    }

    public static Task WriteTextAsync(HttpResponse response, string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        response.ContentType = "text/plain; charset=utf-8";
        response.ContentLength = bytes.Length;
        return response.Body.WriteAsync(bytes, 0, bytes.Length);
    }
}

/// <summary>
/// A Kestrel connection middleware that counts the connections in Kestrel's hands and knows each by the client's
/// port, so that a test can wait (without polling) for the server to have taken a connection, or to hold none.
/// </summary>
internal sealed class ConnectionTracker
{
    private readonly Lock _lock = new();
    private readonly Dictionary<int, TaskCompletionSource> _seen = [];
    private readonly List<(long Total, TaskCompletionSource Done)> _idleWaiters = [];
    private readonly List<int> _openPorts = [];
    private long _open;
    private long _total;

    /// <summary>Connections Kestrel holds now.</summary>
    public long Open
    {
        get
        {
            lock (_lock)
            {
                return _open;
            }
        }
    }

    /// <summary>The client ports of the connections Kestrel holds now, for failure messages.</summary>
    public int[] OpenPorts
    {
        get
        {
            lock (_lock)
            {
                return [.. _openPorts];
            }
        }
    }

    /// <summary>Connections Kestrel has taken so far.</summary>
    public long Total
    {
        get
        {
            lock (_lock)
            {
                return _total;
            }
        }
    }

    public async Task Middleware(ConnectionContext connection, Func<Task> next)
    {
        TaskCompletionSource? seen = null;
        var port = (connection.RemoteEndPoint as IPEndPoint)?.Port;
        lock (_lock)
        {
            _open++;
            _total++;
            if (port is int p)
            {
                seen = SeenLocked(p);
                _openPorts.Add(p);
            }
        }
        seen?.TrySetResult();
        try
        {
            await next();
        }
        finally
        {
            List<TaskCompletionSource>? done = null;
            lock (_lock)
            {
                // A later connection from the same client port (a reset frees it at once) is a new one.
                if (port is int p && _seen.TryGetValue(p, out var mine) && ReferenceEquals(mine, seen))
                {
                    _seen.Remove(p);
                }
                if (port is int q)
                {
                    _openPorts.Remove(q);
                }
                _open--;
                if (_open == 0)
                {
                    for (var i = _idleWaiters.Count - 1; i >= 0; i--)
                    {
                        if (_total >= _idleWaiters[i].Total)
                        {
                            (done ??= []).Add(_idleWaiters[i].Done);
                            _idleWaiters.RemoveAt(i);
                        }
                    }
                }
            }
            done?.ForEach(d => d.TrySetResult());
        }
    }

    /// <summary>
    /// Completes once Kestrel has taken the connection whose client end is bound to <paramref name="clientPort"/>.
    /// Call it right after connecting, before the connection can end.
    /// </summary>
    public Task SeenAsync(int clientPort)
    {
        lock (_lock)
        {
            return SeenLocked(clientPort).Task;
        }
    }

    /// <summary>Completes when Kestrel holds no connection and has taken at least <paramref name="total"/> in all.</summary>
    public Task WhenIdleAsync(long total)
    {
        lock (_lock)
        {
            if (_open == 0 && _total >= total)
            {
                return Task.CompletedTask;
            }
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _idleWaiters.Add((total, done));
            return done.Task;
        }
    }

    private TaskCompletionSource SeenLocked(int port)
    {
        if (!_seen.TryGetValue(port, out var tcs))
        {
            tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _seen[port] = tcs;
        }
        return tcs;
    }
}

/// <summary>One signal per client port, set by the app and awaited by the client of that port.</summary>
internal sealed class PortSignals
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<int, TaskCompletionSource> _signals = new();

    public void Signal(int port) => Get(port).TrySetResult();

    /// <summary>Call it before sending what makes the app signal.</summary>
    public Task WaitAsync(int port) => Get(port).Task;

    private TaskCompletionSource Get(int port)
        => _signals.GetOrAdd(port, static _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
}
