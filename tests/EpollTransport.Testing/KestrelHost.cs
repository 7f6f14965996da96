using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace EpollTransport.Testing;

/// <summary>
/// A Kestrel server on 127.0.0.1 with an ephemeral port, served by the transport a test names, so that one
/// functional suite runs against the epoll transport and against Kestrel's Sockets transport as the oracle.
/// Every response carries the transport's connection type in <see cref="TransportHeader"/>, and the host keeps the
/// ids of the connections that carried a request.
/// </summary>
public sealed class KestrelHost : IAsyncDisposable
{
    /// <summary>The epoll transport with its default (thread pool) scheduling.</summary>
    public const string Epoll = "epoll";

    /// <summary>The epoll transport running Kestrel and the app on the reactor threads.</summary>
    public const string EpollInline = "epoll-inline";

    /// <summary>The epoll transport with default scheduling and <see cref="EpollSendMode.Reactor"/>: every send made on the reactor.</summary>
    public const string EpollReactorSends = "epoll-reactor-sends";

    /// <summary>The epoll transport with default scheduling and <see cref="EpollSendMode.WriteThrough"/> for every protocol.</summary>
    public const string EpollWriteThrough = "epoll-write-through";

    /// <summary>Kestrel's own Sockets transport: the oracle.</summary>
    public const string Sockets = "sockets";

    /// <summary>The response header that names the type of the connection's <see cref="IConnectionTransportFeature"/>.</summary>
    public const string TransportHeader = "X-Transport";

    private static readonly TimeSpan s_gracePeriod = TimeSpan.FromSeconds(5);

    private readonly WebApplication _app;
    private readonly ServerLog _log;
    private readonly ConcurrentDictionary<string, byte> _connectionIds;

    private KestrelHost(WebApplication app, ServerLog log, ConcurrentDictionary<string, byte> connectionIds, string transport, Uri baseAddress)
    {
        _app = app;
        _log = log;
        _connectionIds = connectionIds;
        Transport = transport;
        BaseAddress = baseAddress;
    }

    /// <summary>
    /// The transports every functional suite runs on, for <c>[MemberData]</c>: epoll in both scheduling modes and the
    /// Sockets oracle (<see cref="EpollReactorSends"/> and <see cref="EpollWriteThrough"/> only where a test asks for them).
    /// </summary>
    public static TheoryData<string> Transports => new() { Epoll, EpollInline, Sockets };

    /// <summary>The transport name this host was started with.</summary>
    public string Transport { get; }

    /// <summary>The address the server listens on, e.g. <c>http://127.0.0.1:41234/</c> (<c>https</c> with TLS).</summary>
    public Uri BaseAddress { get; }

    /// <summary>What the server logged at <see cref="LogLevel.Error"/> or above so far.</summary>
    public IReadOnlyCollection<string> LoggedErrors => _log.Errors;

    /// <summary>The server's services, e.g. its <c>IMeterFactory</c>, whose meters are this server's alone.</summary>
    public IServiceProvider Services => _app.Services;

    /// <summary>The distinct ids of the connections that carried a request so far.</summary>
    public IReadOnlyCollection<string> ConnectionIds => _connectionIds.Keys.ToArray();

    /// <summary>Starts a server on <paramref name="transport"/> with the endpoints <paramref name="map"/> adds.</summary>
    /// <param name="transport">
    /// One of <see cref="Epoll"/>, <see cref="EpollInline"/>, <see cref="EpollReactorSends"/>, <see cref="EpollWriteThrough"/>, <see cref="Sockets"/>.
    /// </param>
    /// <param name="map">Maps the endpoints the test needs.</param>
    /// <param name="output">Receives the server's warnings and errors; optional (errors are kept either way).</param>
    /// <param name="endpoint">
    /// Configures the one endpoint on 127.0.0.1 (its protocols, HTTPS); optional. Without it the endpoint is the
    /// address <c>http://127.0.0.1:0</c>, bound as the server starts, so endpoint defaults that <paramref name="map"/>
    /// sets apply to it too.
    /// </param>
    /// <param name="services">Adds the services the test's middleware needs (response compression, say); optional.</param>
    /// <param name="reactorCount">
    /// The epoll transport's reactors: two by default, so that connections spread over loops; one where a test
    /// expects its requests on the thread named <c>epoll-reactor-0</c>.
    /// </param>
    public static async Task<KestrelHost> StartAsync(string transport, Action<WebApplication> map, ITestOutputHelper? output = null,
        Action<ListenOptions>? endpoint = null, int reactorCount = 2, Action<IServiceCollection>? services = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        services?.Invoke(builder.Services);
        var log = new ServerLog(output, transport);
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(log);

        switch (transport)
        {
            case Epoll:
                builder.WebHost.UseEpollTransport(o => o.ReactorCount = reactorCount);
                break;
            case EpollInline:
                builder.WebHost.UseEpollTransport(o =>
                {
                    o.ReactorCount = reactorCount;
                    o.UnsafePreferInlineScheduling = true;
                });
                break;
            case EpollReactorSends:
                builder.WebHost.UseEpollTransport(o =>
                {
                    o.ReactorCount = reactorCount;
                    o.SendMode = EpollSendMode.Reactor;
                });
                break;
            case EpollWriteThrough:
                builder.WebHost.UseEpollTransport(o =>
                {
                    o.ReactorCount = reactorCount;
                    o.SendMode = EpollSendMode.WriteThrough;
                });
                break;
            case Sockets:
                builder.WebHost.UseSockets();
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(transport), transport, "Unknown transport.");
        }
        if (endpoint is null)
        {
            builder.WebHost.UseUrls("http://127.0.0.1:0");
        }
        else
        {
            builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, endpoint));
        }

        var connectionIds = new ConcurrentDictionary<string, byte>(StringComparer.Ordinal);
        var app = builder.Build();
        try
        {
            app.Use((context, next) =>
            {
                connectionIds.TryAdd(context.Connection.Id, 0);
                context.Response.Headers[TransportHeader] = context.Features.Get<IConnectionTransportFeature>()?.GetType().FullName ?? "(none)";
                return next(context);
            });
            map(app);
            await app.StartAsync().WaitAsync(TestTimeouts.WaitLimit);
            var addresses = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses;
            var address = Assert.Single(addresses);
            return new KestrelHost(app, log, connectionIds, transport, new Uri(address.TrimEnd('/') + "/"));
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }
    }

    /// <summary>Asserts that <paramref name="transportType"/> (a <see cref="TransportHeader"/> value) belongs to <see cref="Transport"/>.</summary>
    public void AssertServedBy(string? transportType)
    {
        Assert.NotNull(transportType);
        if (Transport == Sockets)
        {
            Assert.StartsWith("Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets.", transportType, StringComparison.Ordinal);
        }
        else
        {
            Assert.StartsWith("EpollTransport.", transportType, StringComparison.Ordinal);
        }
    }

    /// <summary>Asserts that <paramref name="response"/> was served by <see cref="Transport"/>.</summary>
    public void AssertServedBy(HttpResponseMessage response)
        => AssertServedBy(response.Headers.TryGetValues(TransportHeader, out var values) ? string.Join(",", values) : null);

    /// <summary>
    /// Stops the server: gracefully for a grace period, then Kestrel aborts the connections still open. A failed
    /// test may leave a request hanging; the grace period keeps that from costing the host's 30 s shutdown timeout
    /// and from replacing the test's own failure. A stop that hangs even after the abort fails the test.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            using var grace = new CancellationTokenSource(s_gracePeriod);
            await _app.StopAsync(grace.Token).WaitAsync(TestTimeouts.WaitLimit);
        }
        finally
        {
            await _app.DisposeAsync();
        }
    }

    /// <summary>Keeps the server's errors for the test to assert on, and shows warnings and errors in its output.</summary>
    private sealed class ServerLog(ITestOutputHelper? output, string transport) : ILoggerProvider
    {
        public ConcurrentQueue<string> Errors { get; } = new();

        public ILogger CreateLogger(string categoryName) => new CategoryLogger(this, categoryName);

        public void Dispose()
        {
        }

        private void Write(LogLevel logLevel, string category, int eventId, string message, Exception? exception)
        {
            var line = $"[{transport}] {logLevel} {category}[{eventId}]: {message}{(exception is null ? "" : Environment.NewLine + exception)}";
            if (logLevel >= LogLevel.Error)
            {
                Errors.Enqueue(line);
            }
            try
            {
                output?.WriteLine(line);
            }
            catch (InvalidOperationException)
            {
                // The test has already finished: xunit refuses output after that, and a late log line is not worth
                // failing the server's shutdown over.
            }
        }

        private sealed class CategoryLogger(ServerLog log, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (IsEnabled(logLevel))
                {
                    log.Write(logLevel, category, eventId.Id, formatter(state, exception), exception);
                }
            }
        }
    }
}
