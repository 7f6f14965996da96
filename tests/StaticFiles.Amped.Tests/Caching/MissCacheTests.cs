using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;

namespace StaticFiles.Amped.Tests.Caching;

/// <summary>
/// The negative path cache: a path that names no file is looked up on disk once, until something under the root
/// changes; the app's own endpoints behind the middleware then cost no disk call.
/// </summary>
public sealed class MissCacheTests : IAsyncLifetime
{
    private readonly string _root = Directory.CreateTempSubdirectory("amped-cache-").FullName;
    private AmpedFileServer? _files;
    private IHost? _host;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_host is not null)
        {
            await _host.StopAsync();
            _host.Dispose();
        }
        _files?.Dispose();
        Directory.Delete(_root, recursive: true);
    }

    [Theory]
    [InlineData(AmpedMode.Amped)]
    [InlineData(AmpedMode.Sped)]
    public async Task ASecondRequestForAPathThatNamesNoFileMakesNoLookup(AmpedMode mode)
    {
        var client = await StartAsync(new AmpedStaticFileOptions { Mode = mode });

        Assert.Equal("endpoint", await client.GetStringAsync("/plaintext"));
        var lookups = _files!.Lookups;
        Assert.True(lookups > 0);
        Assert.Equal("endpoint", await client.GetStringAsync("/plaintext"));
        Assert.Equal("endpoint", await client.GetStringAsync("/plaintext"));

        Assert.Equal(lookups, _files.Lookups);
    }

    [Fact]
    public async Task AFileCreatedAfterAMissIsServedOnceTheChangeIsReported()
    {
        var client = await StartAsync(new AmpedStaticFileOptions());
        Assert.Equal("endpoint", await client.GetStringAsync("/late.txt"));

        // inotify reports the create a moment after the write returns.
        var invalidated = _files!.NextCacheInvalidation;
        File.WriteAllText(Path.Combine(_root, "late.txt"), "here now");
        await invalidated.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal("here now", await client.GetStringAsync("/late.txt"));
    }

    [Fact]
    public async Task AFullCacheStopsLearningInsteadOfGrowing()
    {
        var client = await StartAsync(new AmpedStaticFileOptions { PathCacheEntries = 2 });
        foreach (var path in new[] { "/a", "/b", "/c" })
        {
            await client.GetStringAsync(path);
        }
        var lookups = _files!.Lookups;

        await client.GetStringAsync("/a");
        await client.GetStringAsync("/b");
        Assert.Equal(lookups, _files.Lookups);
        await client.GetStringAsync("/c");
        Assert.Equal(lookups + 1, _files.Lookups);
    }

    [Fact]
    public async Task ZeroEntriesTurnsTheCacheOff()
    {
        var client = await StartAsync(new AmpedStaticFileOptions { PathCacheEntries = 0 });
        await client.GetStringAsync("/plaintext");
        var lookups = _files!.Lookups;

        await client.GetStringAsync("/plaintext");

        Assert.Equal(lookups + 1, _files.Lookups);
    }

    private async Task<HttpClient> StartAsync(AmpedStaticFileOptions options)
    {
        _files = new AmpedFileServer(options, _root, NullLogger.Instance);
        var files = _files;
        _host = await new HostBuilder()
            .ConfigureWebHost(web => web.UseTestServer().Configure(app =>
            {
                app.Use(next => context => files.InvokeAsync(context, next));
                app.Run(context => context.Response.WriteAsync("endpoint"));
            }))
            .StartAsync();
        return _host.GetTestClient();
    }
}
