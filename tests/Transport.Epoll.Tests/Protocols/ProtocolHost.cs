using System.Collections.Concurrent;
using System.Net;
using EpollTransport.Tests.Http;
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

namespace EpollTransport.Tests.Protocols;

/// <summary>
/// Like <see cref="KestrelHost"/> (same transport names, same transport options), but with one endpoint on
/// 127.0.0.1 that the test configures: its protocols, TLS. Every response carries the transport's connection type in
/// <see cref="TransportHeader"/>, and the host counts the connections that carried a request.
/// </summary>
public sealed class ProtocolHost : IAsyncDisposable
{
    /// <summary>The response header that names the type of the connection's <see cref="IConnectionTransportFeature"/>.</summary>
    public const string TransportHeader = "X-Transport";

    private static readonly TimeSpan s_gracePeriod = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan s_lifecycleTimeout = TimeSpan.FromSeconds(30);

    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, byte> _connectionIds;
    private readonly ConcurrentQueue<string> _errors;

    private ProtocolHost(WebApplication app, ConcurrentDictionary<string, byte> connectionIds, ConcurrentQueue<string> errors, Uri baseAddress)
    {
        _app = app;
        _connectionIds = connectionIds;
        _errors = errors;
        BaseAddress = baseAddress;
    }

    /// <summary>The address the server listens on, e.g. <c>https://127.0.0.1:41234/</c>.</summary>
    public Uri BaseAddress { get; }

    /// <summary>The distinct ids of the connections that carried a request so far.</summary>
    public IReadOnlyCollection<string> ConnectionIds => _connectionIds.Keys.ToArray();

    /// <summary>What the server logged at <see cref="LogLevel.Error"/> or above so far.</summary>
    public IReadOnlyCollection<string> LoggedErrors => _errors;

    /// <summary>Starts a server on <paramref name="transport"/> (a <see cref="KestrelHost"/> name).</summary>
    /// <param name="transport">One of <see cref="KestrelHost.Epoll"/>, <see cref="KestrelHost.EpollInline"/>, <see cref="KestrelHost.Sockets"/>.</param>
    /// <param name="endpoint">Configures the one endpoint: protocols, HTTPS.</param>
    /// <param name="map">Adds the middleware and endpoints the test needs.</param>
    /// <param name="output">Receives the server's warnings and errors.</param>
    public static async Task<ProtocolHost> StartAsync(string transport, Action<ListenOptions> endpoint, Action<WebApplication> map, ITestOutputHelper output)
    {
        var builder = WebApplication.CreateSlimBuilder();
        var errors = new ConcurrentQueue<string>();
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(new ServerLog(output, transport, errors));

        switch (transport)
        {
            case KestrelHost.Epoll:
                builder.WebHost.UseEpollTransport(o => o.ReactorCount = 2);
                break;
            case KestrelHost.EpollInline:
                builder.WebHost.UseEpollTransport(o =>
                {
                    o.ReactorCount = 2;
                    o.UnsafePreferInlineScheduling = true;
                });
                break;
            case KestrelHost.Sockets:
                builder.WebHost.UseSockets();
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(transport), transport, "Unknown transport.");
        }
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, endpoint));

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
            await app.StartAsync().WaitAsync(s_lifecycleTimeout);
            var addresses = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses;
            var address = Assert.Single(addresses);
            return new ProtocolHost(app, connectionIds, errors, new Uri(address.TrimEnd('/') + "/"));
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }
    }

    /// <summary>Asserts that <paramref name="transportType"/> (a <see cref="TransportHeader"/> value) belongs to <paramref name="transport"/>.</summary>
    public static void AssertServedBy(string transport, string? transportType)
    {
        Assert.NotNull(transportType);
        if (transport == KestrelHost.Sockets)
        {
            Assert.StartsWith("Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets.", transportType, StringComparison.Ordinal);
        }
        else
        {
            Assert.StartsWith("EpollTransport.", transportType, StringComparison.Ordinal);
        }
    }

    /// <summary>Asserts that <paramref name="response"/> was served by <paramref name="transport"/>.</summary>
    public static void AssertServedBy(string transport, HttpResponseMessage response)
        => AssertServedBy(transport, response.Headers.TryGetValues(TransportHeader, out var values) ? string.Join(",", values) : null);

    /// <summary>Stops the server, gracefully for a grace period, as <see cref="KestrelHost.DisposeAsync"/> does.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            using var grace = new CancellationTokenSource(s_gracePeriod);
            await _app.StopAsync(grace.Token).WaitAsync(s_lifecycleTimeout);
        }
        finally
        {
            await _app.DisposeAsync();
        }
    }

    /// <summary>Keeps the server's errors for the test to assert on, and shows warnings and errors in its output.</summary>
    private sealed class ServerLog(ITestOutputHelper output, string transport, ConcurrentQueue<string> errors) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new CategoryLogger(this, categoryName);

        public void Dispose()
        {
        }

        private void Write(LogLevel logLevel, string category, int eventId, string message, Exception? exception)
        {
            var line = $"[{transport}] {logLevel} {category}[{eventId}]: {message}{(exception is null ? "" : Environment.NewLine + exception)}";
            if (logLevel >= LogLevel.Error)
            {
                errors.Enqueue(line);
            }
            try
            {
                output.WriteLine(line);
            }
            catch (InvalidOperationException)
            {
                // The test has already finished; a late log line is not worth failing the shutdown over.
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
