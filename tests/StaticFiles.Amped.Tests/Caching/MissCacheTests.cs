namespace StaticFiles.Amped.Tests.Caching;

/// <summary>
/// The negative path cache: a path that names no file is looked up on disk once, until something under the root
/// changes; the app's own endpoints behind the middleware then cost no disk call.
/// </summary>
public sealed class MissCacheTests : IAsyncLifetime
{
    private readonly FileServerHost _host = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => _host.DisposeAsync().AsTask();

    [Theory]
    [InlineData(AmpedMode.Amped)]
    [InlineData(AmpedMode.Sped)]
    public async Task ASecondRequestForAPathThatNamesNoFileMakesNoLookup(AmpedMode mode)
    {
        var client = await StartAsync(new AmpedStaticFileOptions { Mode = mode });

        Assert.Equal("endpoint", await client.GetStringAsync("/plaintext"));
        var lookups = _host.Files.Lookups;
        Assert.True(lookups > 0);
        Assert.Equal("endpoint", await client.GetStringAsync("/plaintext"));
        Assert.Equal("endpoint", await client.GetStringAsync("/plaintext"));

        Assert.Equal(lookups, _host.Files.Lookups);
    }

    [Fact]
    public async Task AFileCreatedAfterAMissIsServedOnceTheChangeIsReported()
    {
        var client = await StartAsync(new AmpedStaticFileOptions());
        Assert.Equal("endpoint", await client.GetStringAsync("/late.txt"));

        // inotify reports the create a moment after the write returns.
        var invalidated = _host.Files.NextCacheInvalidation;
        File.WriteAllText(_host.PathOf("late.txt"), "here now");
        await invalidated.WaitAsync(WaitLimit);

        Assert.Equal("here now", await client.GetStringAsync("/late.txt"));
    }

    [Fact]
    public async Task AFullCacheStopsLearningInsteadOfGrowing()
    {
        var client = await StartAsync(new AmpedStaticFileOptions { MissCacheEntries = 2 });
        foreach (var path in new[] { "/a", "/b", "/c" })
        {
            await client.GetStringAsync(path);
        }
        var lookups = _host.Files.Lookups;

        await client.GetStringAsync("/a");
        await client.GetStringAsync("/b");
        Assert.Equal(lookups, _host.Files.Lookups);
        await client.GetStringAsync("/c");
        Assert.Equal(lookups + 1, _host.Files.Lookups);
    }

    [Fact]
    public async Task ZeroEntriesTurnsTheCacheOff()
    {
        var client = await StartAsync(new AmpedStaticFileOptions { MissCacheEntries = 0 });
        await client.GetStringAsync("/plaintext");
        var lookups = _host.Files.Lookups;

        await client.GetStringAsync("/plaintext");

        Assert.Equal(lookups + 1, _host.Files.Lookups);
    }

    private Task<HttpClient> StartAsync(AmpedStaticFileOptions options) => _host.StartAsync(options);
}
