using EpollTransport;
using EpollTransport.Http;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Microsoft.AspNetCore.Hosting;

/// <summary>Selects the epoll transport for Kestrel.</summary>
public static class WebHostBuilderEpollExtensions
{
    /// <summary>
    /// Makes Kestrel serve IP end points, Unix domain sockets and handed-in fds through the epoll transport;
    /// other end points (named pipes) stay with the transports already registered. Off Linux this only logs a
    /// warning at startup and Kestrel keeps its Sockets transport.
    /// </summary>
    /// <param name="hostBuilder">The web host builder.</param>
    /// <returns>The web host builder, for chaining.</returns>
    public static IWebHostBuilder UseEpollTransport(this IWebHostBuilder hostBuilder) => hostBuilder.UseEpollTransport(_ => { });

    /// <summary>
    /// Makes Kestrel serve through the epoll transport, as <see cref="UseEpollTransport(IWebHostBuilder)"/>, with
    /// <see cref="EpollTransportOptions"/> set by <paramref name="configureOptions"/>.
    /// </summary>
    /// <param name="hostBuilder">The web host builder.</param>
    /// <param name="configureOptions">Configures <see cref="EpollTransportOptions"/>.</param>
    /// <returns>The web host builder, for chaining.</returns>
    public static IWebHostBuilder UseEpollTransport(this IWebHostBuilder hostBuilder, Action<EpollTransportOptions> configureOptions)
    {
        ArgumentNullException.ThrowIfNull(hostBuilder);
        ArgumentNullException.ThrowIfNull(configureOptions);
        return hostBuilder.ConfigureServices(services =>
        {
            if (!OperatingSystem.IsLinux())
            {
                services.AddHostedService<NotLinuxNotice>();
                return;
            }

            services.AddOptions<EpollTransportOptions>().Configure(configureOptions);
            // Registered after Kestrel's own factory: Kestrel asks the last registered transport first, and
            // CanBind sends what epoll does not handle to the next one.
            services.AddSingleton<EpollTransportFactory>();
            services.AddSingleton<IConnectionListenerFactory>(sp => sp.GetRequiredService<EpollTransportFactory>());
            // SendFileAsync by sendfile: a middleware first in the pipeline wraps Kestrel's response body.
            services.TryAddSingleton<SendFileMetrics>();
            services.TryAddEnumerable(ServiceDescriptor.Singleton<IStartupFilter, ZeroCopySendFileStartupFilter>());
        });
    }

    /// <summary>
    /// Makes Kestrel serve through the epoll transport, as <see cref="UseEpollTransport(IWebHostBuilder)"/>,
    /// with <see cref="EpollTransportOptions"/> bound from <paramref name="configuration"/>: each key names an option,
    /// e.g. <c>ReadBudgetPerTurn</c> in the section <c>EpollTransport</c>, so that
    /// <c>--EpollTransport:ReadBudgetPerTurn 16384</c> on the command line sets it. A value out of an option's range
    /// throws <see cref="ArgumentOutOfRangeException"/> when the transport's options are first read.
    /// </summary>
    /// <param name="hostBuilder">The web host builder.</param>
    /// <param name="configuration">The configuration section to bind, e.g. <c>builder.Configuration.GetSection("EpollTransport")</c>.</param>
    /// <returns>The web host builder, for chaining.</returns>
    public static IWebHostBuilder UseEpollTransport(this IWebHostBuilder hostBuilder, IConfiguration configuration) =>
        hostBuilder.UseEpollTransport(configuration, _ => { });

    /// <summary>
    /// Makes Kestrel serve through the epoll transport with <see cref="EpollTransportOptions"/> bound from
    /// <paramref name="configuration"/>, as <see cref="UseEpollTransport(IWebHostBuilder, IConfiguration)"/>, then
    /// configured by <paramref name="configureOptions"/>, which therefore wins over the configuration.
    /// </summary>
    /// <param name="hostBuilder">The web host builder.</param>
    /// <param name="configuration">The configuration section to bind, e.g. <c>builder.Configuration.GetSection("EpollTransport")</c>.</param>
    /// <param name="configureOptions">Configures <see cref="EpollTransportOptions"/> after the binding.</param>
    /// <returns>The web host builder, for chaining.</returns>
    public static IWebHostBuilder UseEpollTransport(this IWebHostBuilder hostBuilder, IConfiguration configuration, Action<EpollTransportOptions> configureOptions)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(configureOptions);
        return hostBuilder.UseEpollTransport(options =>
        {
            configuration.Bind(options);
            configureOptions(options);
        });
    }

    private sealed class NotLinuxNotice(ILogger<EpollTransportFactory> logger) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            EpollTransportLog.NotLinux(logger, System.Runtime.InteropServices.RuntimeInformation.OSDescription);
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
