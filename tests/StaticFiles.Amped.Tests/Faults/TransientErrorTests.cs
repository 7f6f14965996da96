using System.Net;
using System.Security.Cryptography;
using EpollTransport.Posix;
using StaticFiles.Amped.Disk;
using StaticFiles.Amped.Tests.Caching;
using StaticFiles.Amped.Tests.Diagnostics;
using StaticFiles.Amped.Tests.Disk;

namespace StaticFiles.Amped.Tests.Faults;

/// <summary>
/// A disk or a process that is short of something for a moment (fds, memory, a helper's place in its queue) is not a
/// missing file: the request gets 503 with Retry-After (an I/O error: 500), the episode is logged once, and nothing
/// is remembered, so that the next request tries again.
/// </summary>
public sealed class TransientErrorTests : IAsyncLifetime
{
    private readonly FileServerHost _host = new();
    private readonly RecordingLogger _log = new();

    public Task InitializeAsync()
    {
        Directory.CreateDirectory(_host.PathOf("docs"));
        File.WriteAllText(_host.PathOf("docs/index.html"), "<p>docs</p>");
        File.WriteAllText(_host.PathOf("a.txt"), "a");
        return Task.CompletedTask;
    }

    public Task DisposeAsync() => _host.DisposeAsync().AsTask();

    [Fact]
    public async Task RunningOutOfFdsOnTheDefaultDocumentAnswers503AndIsNotRemembered()
    {
        using var disk = new ScriptedDisk();
        // Not in the dentry cache (EAGAIN on the loop), then EMFILE on the helper: twice, then healthy.
        disk.FailOpens("docs/index.html", Errnos.EAGAIN, Errnos.EMFILE, Errnos.EAGAIN, Errnos.EMFILE);
        var client = await _host.StartAsync(new AmpedStaticFileOptions(), disk, logger: _log);

        using var first = await client.GetAsync("/docs/");
        using var second = await client.GetAsync("/docs/");
        using var third = await client.GetAsync("/docs/");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, first.StatusCode);
        Assert.Equal("1", first.Headers.RetryAfter?.ToString());
        Assert.Equal(HttpStatusCode.ServiceUnavailable, second.StatusCode);
        Assert.Equal(HttpStatusCode.OK, third.StatusCode);
        Assert.Equal("<p>docs</p>", await third.Content.ReadAsStringAsync());
        // One episode, one warning; the recovery is said once too.
        Assert.Equal(1, _log.Count("DiskUnavailable"));
        Assert.Equal(1, _log.Count("DiskRecovered"));
    }

    [Theory]
    [InlineData(Errnos.EMFILE, HttpStatusCode.ServiceUnavailable)]
    [InlineData(Errnos.ENFILE, HttpStatusCode.ServiceUnavailable)]
    [InlineData(Errnos.ENOMEM, HttpStatusCode.ServiceUnavailable)]
    [InlineData(Errnos.EIO, HttpStatusCode.InternalServerError)]
    public async Task ATransientOpenErrorIsAnErrorStatusAndTheNextRequestIsServed(int errno, HttpStatusCode status)
    {
        using var disk = new ScriptedDisk { ColdDentries = true };
        disk.FailOpens("a.txt", errno);
        var client = await _host.StartAsync(new AmpedStaticFileOptions(), disk, logger: _log);

        using var failed = await client.GetAsync("/a.txt");
        using var next = await client.GetAsync("/a.txt");

        Assert.Equal(status, failed.StatusCode);
        Assert.Equal(status == HttpStatusCode.ServiceUnavailable ? "1" : null, failed.Headers.RetryAfter?.ToString());
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        Assert.Equal("a", await next.Content.ReadAsStringAsync());
        Assert.Equal(1, _log.Count("DiskUnavailable"));
    }

    [Fact]
    public async Task ARefusedDefaultDocumentLookupAnswers503AndIsNotRemembered()
    {
        using var disk = new ScriptedDisk();
        // The folder opens on the loop; its document is not in the dentry cache and must go to the (full) queue.
        disk.FailOpens("docs/index.html", Errnos.EAGAIN);
        var client = await _host.StartAsync(new AmpedStaticFileOptions { HelperQueueCapacity = 1 }, disk, logger: _log);

        HttpResponseMessage refused;
        await using (await StalledHelpers.StartAsync(_host.Files, DiskQueue.Metadata))
        {
            refused = await client.GetAsync("/docs/");
        }
        using var next = await client.GetAsync("/docs/");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.Equal("1", refused.Headers.RetryAfter?.ToString());
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        Assert.Equal("<p>docs</p>", await next.Content.ReadAsStringAsync());
        refused.Dispose();
    }

    [Fact]
    public async Task ATransientErrorOnAPrecompressedSiblingServesTheFileButDoesNotCacheItsAbsence()
    {
        File.WriteAllText(_host.PathOf("a.txt.gz"), "gzipped");
        using var disk = new ScriptedDisk { ColdDentries = true };
        disk.FailOpens("a.txt.gz", Errnos.EMFILE);
        var client = await _host.StartAsync(new AmpedStaticFileOptions(), disk, logger: _log);

        using var first = await GetGzipAsync(client);
        using var second = await GetGzipAsync(client);

        Assert.Equal("a", await first.Content.ReadAsStringAsync());
        // The entry made without its sibling was not cached: the next request looked again and found it.
        Assert.Equal("gzip", second.Content.Headers.ContentEncoding.Single());
        Assert.Equal("gzipped", await second.Content.ReadAsStringAsync());
    }

    /// <summary>
    /// One data helper in a read that waits for the disk, one read waiting in its queue (capacity 1), and a third
    /// cold request whose read is refused: nothing has been sent for it yet, so it gets 503, not a reset.
    /// </summary>
    [Fact]
    public async Task AReadRefusedBeforeTheHeadersAnswers503()
    {
        var content = RandomNumberGenerator.GetBytes(200 * 1024);
        File.WriteAllBytes(_host.PathOf("slow.bin"), content);
        using var disk = new ScriptedDisk { SlowFile = "slow.bin" };
        var client = await _host.StartAsync(new AmpedStaticFileOptions
        {
            ServeUnknownFileTypes = true,
            DataHelperThreads = 1,
            HelperQueueCapacity = 1,
            ContentCacheBytes = 0,
        }, disk, logger: _log);

        var first = client.GetAsync("/slow.bin");
        await disk.ReadWaiting.WaitAsync(WaitLimit);
        // Of these two, whichever posts its read first waits in the queue; the other is refused.
        var second = client.GetAsync("/slow.bin");
        var third = client.GetAsync("/slow.bin");
        var refused = await (await Task.WhenAny(second, third).WaitAsync(WaitLimit));
        disk.ReleaseReads();
        var served = await Task.WhenAll(first, second, third).WaitAsync(WaitLimit);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.Equal("1", refused.Headers.RetryAfter?.ToString());
        var ok = served.Where(r => r != refused).ToArray();
        Assert.Equal(2, ok.Length);
        foreach (var response in ok)
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(content, await response.Content.ReadAsByteArrayAsync());
        }
        foreach (var response in served)
        {
            response.Dispose();
        }
    }

    private static Task<HttpResponseMessage> GetGzipAsync(HttpClient client)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/a.txt");
        request.Headers.AcceptEncoding.ParseAdd("gzip");
        return client.SendAsync(request);
    }
}
