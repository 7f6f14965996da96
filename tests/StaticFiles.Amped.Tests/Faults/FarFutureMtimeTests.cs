using System.Diagnostics;
using System.Net;
using StaticFiles.Amped.Tests.Caching;
using StaticFiles.Amped.Tests.Disk;

namespace StaticFiles.Amped.Tests.Faults;

/// <summary>
/// tmpfs and btrfs keep an mtime past the year 9999 (<c>touch -d @300000000000</c>; tar restores such times), which
/// no <see cref="DateTimeOffset"/> holds. Such a file is served, with Last-Modified clamped, and building its cache
/// entry never leaves an fd open, whatever goes wrong on the way.
/// </summary>
public sealed class FarFutureMtimeTests : IAsyncLifetime
{
    private const long FarFuture = 300_000_000_000;
    private const string LastSecondOf9999 = "Fri, 31 Dec 9999 23:59:59 GMT";
    private readonly FileServerHost _host = new();

    public Task InitializeAsync()
    {
        File.WriteAllText(_host.PathOf("a.txt"), "plain");
        File.WriteAllText(_host.PathOf("a.txt.gz"), "gzipped");
        File.WriteAllText(_host.PathOf("a.txt.br"), "brotli");
        return Task.CompletedTask;
    }

    public Task DisposeAsync() => _host.DisposeAsync().AsTask();

    [Theory]
    [InlineData(null)]
    [InlineData("gzip")]
    [InlineData("br")]
    public async Task AFileAndItsSiblingsWithAnMtimePastYear9999AreServedAndEveryFdIsClosed(string? coding)
    {
        using var disk = new ScriptedDisk { ModifiedSeconds = FarFuture };
        // No cache: each request opens the file and its siblings and closes them all when it ends.
        var client = await _host.StartAsync(new AmpedStaticFileOptions { FileCacheEntries = 0 }, disk);

        for (var i = 0; i < 100; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/a.txt");
            if (coding is not null)
            {
                request.Headers.AcceptEncoding.ParseAdd(coding);
            }
            using var response = await client.SendAsync(request);

            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(LastSecondOf9999, response.Content.Headers.LastModified?.ToString("r"));
            Assert.Contains($"-{FarFuture:x}.", response.Headers.ETag?.Tag);
            Assert.Equal(coding switch { "gzip" => "gzipped", "br" => "brotli", _ => "plain" }, await response.Content.ReadAsStringAsync());
        }

        Assert.Equal(300, disk.Opened);
        Assert.Equal(0, disk.StillOpen);
    }

    [Fact]
    public async Task AClientThatGoesAwayWhileASiblingIsLookedUpLeavesNoFdOpen()
    {
        using var disk = new ScriptedDisk { ColdDentries = true, SlowOpen = "a.txt.br" };
        var client = await _host.StartAsync(new AmpedStaticFileOptions(), disk);
        using var clientGone = new CancellationTokenSource();

        var request = client.GetAsync("/a.txt", clientGone.Token);
        await disk.OpenWaiting.WaitAsync(WaitLimit);
        clientGone.Cancel();
        disk.ReleaseOpens();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => request);

        // The gzip sibling's job, posted after the client left, never ran; the file and the brotli sibling, opened
        // for an entry that was never made, are closed once the request ends.
        await _host.StopAsync();
        Assert.Equal(2, disk.Opened);
        Assert.Equal(0, disk.StillOpen);
    }

    [Fact]
    public async Task AConditionalRequestWithTheClampedDateIsNotModified()
    {
        using var disk = new ScriptedDisk { ModifiedSeconds = FarFuture };
        var client = await _host.StartAsync(new AmpedStaticFileOptions(), disk);

        using var request = new HttpRequestMessage(HttpMethod.Get, "/a.txt");
        request.Headers.TryAddWithoutValidation("If-Modified-Since", LastSecondOf9999);
        using var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.NotModified, response.StatusCode);
    }
}

/// <summary>
/// The same, on a real tmpfs file, counting the process's open fds: it runs alone (no other test opens or closes
/// fds meanwhile), so the count is exact.
/// </summary>
[Collection(nameof(FdCountCollection))]
public sealed class FarFutureMtimeOnTmpfsTests : IAsyncLifetime
{
    // /dev/shm is tmpfs, which keeps such an mtime; ext4 would clamp it to 2446.
    private readonly FileServerHost _host = new("/dev/shm");

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => _host.DisposeAsync().AsTask();

    [Fact]
    public async Task ARealFileTouchedPastYear9999IsServedAHundredTimesWithAFlatFdCount()
    {
        var path = _host.PathOf("far.txt");
        File.WriteAllText(path, "from the far future");
        await RunAsync("touch", "-d", "@300000000000", path);
        Assert.Equal("300000000000", (await RunAsync("stat", "-c", "%Y", path)).Trim());
        var client = await _host.StartAsync(new AmpedStaticFileOptions { FileCacheEntries = 0 });
        Assert.Equal("from the far future", await client.GetStringAsync("/far.txt"));
        // Fds that only a finalizer closes (the pipes of the touch and stat above, say) would close whenever a GC
        // comes, perhaps during the loop: let them go first.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        var before = Directory.GetFiles("/proc/self/fd").Length;

        for (var i = 0; i < 100; i++)
        {
            using var response = await client.GetAsync("/far.txt");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("from the far future", await response.Content.ReadAsStringAsync());
        }

        Assert.Equal(before, Directory.GetFiles("/proc/self/fd").Length);
    }

    private static async Task<string> RunAsync(string program, params string[] arguments)
    {
        var start = new ProcessStartInfo(program, arguments) { RedirectStandardOutput = true };
        using var process = Process.Start(start)!;
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.Equal(0, process.ExitCode);
        return output;
    }
}

[CollectionDefinition(nameof(FdCountCollection), DisableParallelization = true)]
public sealed class FdCountCollection;
