using System.Security.Cryptography;
using StaticFiles.Amped.Tests.Diagnostics;
using StaticFiles.Amped.Tests.Disk;

namespace StaticFiles.Amped.Tests.Caching;

/// <summary>
/// The middleware goes with its app: every fd its caches hold is closed when the host stops, and a helper stuck in
/// a call that never returns (a dead NFS or FUSE mount) cannot hold up the host's stop.
/// </summary>
public sealed class DisposalTests : IAsyncLifetime
{
    private readonly FileServerHost _host = new();
    private readonly RecordingLogger _log = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => _host.DisposeAsync().AsTask();

    [Fact]
    public async Task StoppingTheHostClosesEveryFdTheCachesHold()
    {
        for (var i = 0; i < 20; i++)
        {
            File.WriteAllText(_host.PathOf($"file{i}.txt"), $"file {i}");
            if (i % 4 == 0)
            {
                File.WriteAllText(_host.PathOf($"file{i}.txt.gz"), "gzipped");
            }
        }
        using var disk = new ScriptedDisk();
        var client = await _host.StartAsync(new AmpedStaticFileOptions(), disk);
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal($"file {i}", await client.GetStringAsync($"/file{i}.txt"));
        }
        Assert.Equal(25, disk.StillOpen);

        await _host.StopAsync().WaitAsync(WaitLimit);

        Assert.Equal(0, disk.StillOpen);
    }

    [Fact]
    public async Task AHelperStuckInAReadDoesNotHoldUpTheHostsStop()
    {
        File.WriteAllBytes(_host.PathOf("stuck.bin"), RandomNumberGenerator.GetBytes(64 * 1024));
        // The read returns only when the test ends: for the host, it never does.
        using var disk = new ScriptedDisk { SlowFile = "stuck.bin", ReadLimit = 2 * WaitLimit };
        var client = await _host.StartAsync(new AmpedStaticFileOptions { ServeUnknownFileTypes = true }, disk, logger: _log);
        _host.Files.Disk.Helpers!.StopTimeout = TimeSpan.FromMilliseconds(100);
        _ = client.GetAsync("/stuck.bin");
        await disk.ReadWaiting.WaitAsync(WaitLimit);

        await _host.StopAsync().WaitAsync(WaitLimit);

        Assert.Equal(1, _log.Count("HelpersStuck"));
        disk.ReleaseReads();
    }

    /// <summary>
    /// A read that returns only after the host stopped (its helper was abandoned, the middleware's loop is gone): its
    /// completion still reaches the request, which ends and closes what it held.
    /// </summary>
    [Fact]
    public async Task ARequestWhoseReadReturnsAfterTheStopEndsAndClosesItsFds()
    {
        File.WriteAllBytes(_host.PathOf("late.bin"), RandomNumberGenerator.GetBytes(64 * 1024));
        using var disk = new ScriptedDisk { SlowFile = "late.bin", ReadLimit = 2 * WaitLimit };
        var client = await _host.StartAsync(new AmpedStaticFileOptions { ServeUnknownFileTypes = true, FileCacheEntries = 0 }, disk, logger: _log);
        _host.Files.Disk.Helpers!.StopTimeout = TimeSpan.FromMilliseconds(100);
        var request = client.GetAsync("/late.bin");
        await disk.ReadWaiting.WaitAsync(WaitLimit);
        await _host.StopAsync().WaitAsync(WaitLimit);
        Assert.Equal(1, disk.StillOpen);

        disk.ReleaseReads();

        await disk.AllClosed.WaitAsync(WaitLimit);
        // Completed or failed, it has ended.
        await Task.WhenAny(request).WaitAsync(WaitLimit);
    }
}
