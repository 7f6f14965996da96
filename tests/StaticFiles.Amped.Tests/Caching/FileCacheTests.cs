using System.Security.Cryptography;
using EpollTransport.Posix;
using StaticFiles.Amped.Caching;
using StaticFiles.Amped.Disk;
using StaticFiles.Amped.Interop;

namespace StaticFiles.Amped.Tests.Caching;

/// <summary>
/// Flash's positive caches: a path served once is served again with no <c>open</c> or <c>statx</c> (its file stays
/// open, its headers ready), and a small file's bytes from memory with no <c>read</c>; bounded in entries and bytes;
/// emptied by a change under the root; an entry's files closed only once no response uses them.
/// </summary>
public sealed class FileCacheTests : IAsyncLifetime
{
    private readonly FileServerHost _host = new();
    private readonly CountingFileCalls _calls = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => _host.DisposeAsync().AsTask();

    [Theory]
    [InlineData(AmpedMode.Amped)]
    [InlineData(AmpedMode.Sped)]
    public async Task ASecondRequestForASmallFileMakesNoFileCallAtAll(AmpedMode mode)
    {
        var content = WriteFile("small.txt", 1000);
        var client = await _host.StartAsync(new AmpedStaticFileOptions { Mode = mode }, _calls);
        Assert.Equal(content, await client.GetByteArrayAsync("/small.txt"));
        var calls = _calls.All;
        var lookups = _host.Files.Lookups;

        using var response = await client.GetAsync("/small.txt");

        Assert.Equal(content, await response.Content.ReadAsByteArrayAsync());
        Assert.Equal(calls, _calls.All);
        Assert.Equal(lookups, _host.Files.Lookups);
        Assert.Equal(content.Length, _host.Files.Files!.ContentBytes);
    }

    [Fact]
    public async Task AHitOnALargeFileReadsFromItsOpenFileWithoutOpenStatOrClose()
    {
        var content = WriteFile("large.txt", 300 * 1024);
        var client = await _host.StartAsync(new AmpedStaticFileOptions(), _calls);
        Assert.Equal(content, await client.GetByteArrayAsync("/large.txt"));
        var (opens, stats, closes, reads) = (_calls.Opens, _calls.Stats, _calls.Closes, _calls.ReadsNoWait + _calls.Reads);

        Assert.Equal(content, await client.GetByteArrayAsync("/large.txt"));

        Assert.Equal((opens, stats, closes), (_calls.Opens, _calls.Stats, _calls.Closes));
        Assert.True(_calls.ReadsNoWait + _calls.Reads > reads);
        Assert.Equal(0, _host.Files.Files!.ContentBytes);
    }

    [Fact]
    public async Task ContentsBeyondTheByteBudgetAreReadFromTheFileEachTime()
    {
        var content = WriteFile("small.txt", 1000);
        var client = await _host.StartAsync(new AmpedStaticFileOptions { ContentCacheBytes = 999 }, _calls);
        Assert.Equal(content, await client.GetByteArrayAsync("/small.txt"));
        var (opens, reads) = (_calls.Opens, _calls.ReadsNoWait);

        Assert.Equal(content, await client.GetByteArrayAsync("/small.txt"));

        Assert.Equal(opens, _calls.Opens);
        Assert.True(_calls.ReadsNoWait > reads);
        Assert.Equal(0, _host.Files.Files!.ContentBytes);
    }

    [Fact]
    public async Task AChangeUnderTheRootEmptiesTheCacheAndClosesItsFiles()
    {
        var content = WriteFile("a.txt", 100);
        var client = await _host.StartAsync(new AmpedStaticFileOptions(), _calls);
        Assert.Equal(content, await client.GetByteArrayAsync("/a.txt"));
        var closes = _calls.Closes;
        var lookups = _host.Files.Lookups;

        var changed = _host.Files.NextCacheInvalidation;
        WriteFile("b.txt", 10);
        await changed.WaitAsync(WaitLimit);

        Assert.Equal(closes + 1, _calls.Closes);
        Assert.Equal(0, _host.Files.Files!.Count);
        Assert.Equal(0, _host.Files.Files.ContentBytes);
        Assert.Equal(content, await client.GetByteArrayAsync("/a.txt"));
        Assert.True(_host.Files.Lookups > lookups);
    }

    [Fact]
    public async Task AFullCacheEvictsAnEntryAndClosesItsFile()
    {
        foreach (var name in new[] { "a.txt", "b.txt", "c.txt" })
        {
            WriteFile(name, 10);
        }
        var client = await _host.StartAsync(new AmpedStaticFileOptions { FileCacheEntries = 2 }, _calls);
        var closes = _calls.Closes;

        foreach (var name in new[] { "/a.txt", "/b.txt", "/c.txt" })
        {
            Assert.Equal(10, (await client.GetByteArrayAsync(name)).Length);
        }

        Assert.Equal(2, _host.Files.Files!.Count);
        Assert.Equal(closes + 1, _calls.Closes);
    }

    [Fact]
    public async Task ZeroEntriesTurnsTheCacheOff()
    {
        var content = WriteFile("a.txt", 100);
        var client = await _host.StartAsync(new AmpedStaticFileOptions { FileCacheEntries = 0 }, _calls);
        Assert.Equal(content, await client.GetByteArrayAsync("/a.txt"));
        var (opens, closes) = (_calls.Opens, _calls.Closes);

        Assert.Equal(content, await client.GetByteArrayAsync("/a.txt"));

        Assert.Null(_host.Files.Files);
        Assert.True(_calls.Opens > opens);
        Assert.Equal(closes + 1, _calls.Closes);
    }

    [Fact]
    public async Task AnEntryEvictedWhileARequestHoldsItKeepsItsFileOpenUntilTheRequestEnds()
    {
        WriteFile("a.txt", 10);
        WriteFile("b.txt", 10);
        var rootFd = FileInterop.OpenDirectory(_host.Root).IntValue;
        using var watcher = new RootWatcher(_host.Root);
        try
        {
            var cache = new FileCache(watcher, capacity: 1, contentBudget: 0, maxFileSize: 0);
            var first = Entry(rootFd, "a.txt");
            cache.Add("/a.txt", first, watcher.Generation);
            Assert.True(cache.TryGet("/a.txt", out var held));
            first.Release();

            var second = Entry(rootFd, "b.txt");
            cache.Add("/b.txt", second, watcher.Generation);
            second.Release();

            Assert.False(cache.TryGet("/a.txt", out _));
            Assert.Equal(0, _calls.Closes);
            Assert.True(FileInterop.StatFd(held.File.Fd, out _).IsSuccess);
            held.Release();
            Assert.Equal(1, _calls.Closes);
            Assert.False(held.TryAcquire());

            // The entry for b.txt, held by the cache alone, is closed when a change empties it.
            var changed = watcher.NextChange;
            WriteFile("c.txt", 10);
            await changed.WaitAsync(WaitLimit);
            Assert.Equal(2, _calls.Closes);
        }
        finally
        {
            PosixIO.Close(rootFd);
        }
    }

    private CachedPath Entry(int rootFd, string name)
    {
        var fd = _calls.OpenBeneath(rootFd, name).IntValue;
        Assert.True(_calls.StatFd(fd, out var stat).IsSuccess);
        var file = new CachedFile(new OpenedFile(fd, 0, stat), _host.PathOf(name));
        return new CachedPath(_calls, file, null, null, "text/plain");
    }

    private byte[] WriteFile(string name, int length)
    {
        var content = RandomNumberGenerator.GetBytes(length);
        File.WriteAllBytes(_host.PathOf(name), content);
        return content;
    }
}
