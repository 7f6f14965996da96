using EpollTransport;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
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
    /// <param name="configureOptions">Configures <see cref="EpollTransportOptions"/>; optional.</param>
    /// <returns>The web host builder, for chaining.</returns>
    public static IWebHostBuilder UseEpollTransport(this IWebHostBuilder hostBuilder, Action<EpollTransportOptions>? configureOptions = null)
    {
        ArgumentNullException.ThrowIfNull(hostBuilder);
        return hostBuilder.ConfigureServices(services =>
        {
            if (!OperatingSystem.IsLinux())
            {
                services.AddHostedService<NotLinuxNotice>();
                return;
            }

            services.AddOptions<EpollTransportOptions>();
            if (configureOptions is not null)
            {
                services.Configure(configureOptions);
            }
            // Registered after Kestrel's own factory: Kestrel asks the last registered transport first, and
            // CanBind sends what epoll does not handle to the next one.
            services.AddSingleton<EpollTransportFactory>();
            services.AddSingleton<IConnectionListenerFactory>(sp => sp.GetRequiredService<EpollTransportFactory>());
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
