using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using StaticFiles.Amped;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Adds <see cref="AmpedStaticFileOptions"/>-configured static files to a pipeline.</summary>
public static class AmpedStaticFilesExtensions
{
    /// <summary>
    /// Serves the files under <see cref="AmpedStaticFileOptions.RootPath"/> (default: the web root) for GET and HEAD,
    /// with Flash's AMPED design: the loop that runs the request never blocks on disk. Requests it does not serve
    /// go to the next middleware.
    /// </summary>
    /// <param name="app">The pipeline.</param>
    /// <param name="options">The options; null for the defaults.</param>
    /// <returns><paramref name="app"/>.</returns>
    public static IApplicationBuilder UseAmpedStaticFiles(this IApplicationBuilder app, AmpedStaticFileOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(app);
        options ??= new AmpedStaticFileOptions();
        var root = options.RootPath ?? app.ApplicationServices.GetService<IWebHostEnvironment>()?.WebRootPath
            ?? throw new InvalidOperationException("UseAmpedStaticFiles needs AmpedStaticFileOptions.RootPath, or an app with a web root.");
        var logger = app.ApplicationServices.GetService<ILoggerFactory>()?.CreateLogger("StaticFiles.Amped") ?? NullLogger.Instance;
        var files = new AmpedFileServer(options, root, logger, meterFactory: app.ApplicationServices.GetService<IMeterFactory>());
        // The helpers and the middleware's own loop are threads: they end with the app.
        app.ApplicationServices.GetService<IHostApplicationLifetime>()?.ApplicationStopped.Register(files.Dispose);
        return app.Use(next => context => files.InvokeAsync(context, next));
    }
}
