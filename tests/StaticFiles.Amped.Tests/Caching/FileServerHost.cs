using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using StaticFiles.Amped.Disk;

namespace StaticFiles.Amped.Tests.Caching;

/// <summary>
/// An <see cref="AmpedFileServer"/> over a fresh temp folder, reachable through a <see cref="TestServer"/>, with the
/// server itself at hand so that a test can read its counters and caches. A request it does not serve gets the
/// body "endpoint" from the app behind it.
/// </summary>
internal sealed class FileServerHost : IAsyncDisposable
{
    private IHost? _host;

    /// <summary>A host over a new folder in the temp folder, or in <paramref name="parent"/> (e.g. a tmpfs).</summary>
    public FileServerHost(string? parent = null)
        => Root = parent is null
            ? Directory.CreateTempSubdirectory("amped-cache-").FullName
            : Directory.CreateDirectory(Path.Combine(parent, $"amped-cache-{Guid.NewGuid():N}")).FullName;

    public string Root { get; }

    public AmpedFileServer Files { get; private set; } = null!;

    public HttpClient Client { get; private set; } = null!;

    public string PathOf(string relative) => Path.Combine(Root, relative);

    /// <param name="root">The folder to serve, relative to <see cref="Root"/> (a symlink to swap, say); <see cref="Root"/> itself by default.</param>
    public async Task<HttpClient> StartAsync(AmpedStaticFileOptions options, IFileCalls? calls = null, IMeterFactory? meterFactory = null,
        string? root = null, ILogger? logger = null, Func<string, FileSystemWatcher>? createWatcher = null)
    {
        Files = new AmpedFileServer(options, root is null ? Root : PathOf(root), logger ?? NullLogger.Instance, calls, meterFactory, createWatcher);
        var files = Files;
        _host = await new HostBuilder()
            .ConfigureWebHost(web => web.UseTestServer().Configure(app =>
            {
                // As UseAmpedStaticFiles: the middleware's threads and fds go with the app.
                app.ApplicationServices.GetRequiredService<IHostApplicationLifetime>().ApplicationStopped.Register(files.Dispose);
                app.Use(next => context => files.InvokeAsync(context, next));
                app.Run(context => context.Response.WriteAsync("endpoint"));
            }))
            .StartAsync();
        Client = _host.GetTestClient();
        return Client;
    }

    /// <summary>Stops the host: every request has ended when this returns.</summary>
    public async Task StopAsync()
    {
        if (_host is not null)
        {
            await _host.StopAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_host is not null)
        {
            await _host.StopAsync();
            _host.Dispose();
        }
        Files?.Dispose();
        Directory.Delete(Root, recursive: true);
    }
}
