using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using StaticFiles.Amped.Tests.Caching;
using StaticFiles.Amped.Tests.Disk;

namespace StaticFiles.Amped.Tests.Middleware;

/// <summary>
/// A precompressed sibling's absence is remembered under a key no request path can have, and a request that routing
/// already matched to an endpoint is the endpoint's, as with <c>UseStaticFiles</c>: it costs the middleware nothing.
/// </summary>
public sealed class SmallFixesTests : IAsyncLifetime
{
    private readonly FileServerHost _host = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => _host.DisposeAsync().AsTask();

    [Fact]
    public async Task ASiblingsMissIsNotTakenForADotFileOfThatName()
    {
        Directory.CreateDirectory(_host.PathOf("docs"));
        File.WriteAllText(_host.PathOf("docs/index.html"), "<p>docs</p>");
        File.WriteAllText(_host.PathOf("docs/.br"), "a dot file");
        var client = await _host.StartAsync(new AmpedStaticFileOptions { ServeDotFiles = true, ServeUnknownFileTypes = true });

        // Looking for docs/index.html.br finds none; that absence must not answer for /docs/.br.
        Assert.Equal("<p>docs</p>", await client.GetStringAsync("/docs/"));

        Assert.Equal("a dot file", await client.GetStringAsync("/docs/.br"));
    }

    [Fact]
    public async Task ARequestRoutedToAnEndpointMakesNoLookup()
    {
        File.WriteAllText(_host.PathOf("plaintext"), "a file named like the endpoint");
        using var disk = new ScriptedDisk();
        using var files = new AmpedFileServer(new AmpedStaticFileOptions { ServeUnknownFileTypes = true }, _host.Root, NullLogger.Instance, disk);
        using var host = await new HostBuilder()
            .ConfigureWebHost(web => web.UseTestServer()
                .ConfigureServices(services => services.AddRouting())
                .Configure(app =>
                {
                    app.UseRouting();
                    app.Use(next => context => files.InvokeAsync(context, next));
                    app.UseEndpoints(endpoints => endpoints.MapGet("/plaintext", () => "Hello, World!"));
                }))
            .StartAsync();
        var client = host.GetTestClient();

        Assert.Equal("Hello, World!", await client.GetStringAsync("/plaintext"));
        Assert.Equal("Hello, World!", await client.GetStringAsync("/plaintext"));

        Assert.Equal(0, files.Lookups);
        Assert.Equal(0, disk.Opened);
        await host.StopAsync();
    }
}
