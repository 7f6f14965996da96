using System.Diagnostics;
using EpollTransport.Posix;

namespace EpollTransport.Tests.Posix;

/// <summary>
/// <see cref="PosixIO.PagesReady"/> (mincore of an untouched mapping) and <see cref="PosixIO.ReadAhead"/>, the two
/// calls behind the rule that a loop's sendfile never waits for the disk: a range is ready only when every page of it
/// is cached, and a read-ahead returns only once it is.
/// </summary>
public sealed class PagesReadyTests : IDisposable
{
    private const int Size = 3 * 1024 * 1024 + 100;
    private readonly string _folder = Directory.CreateTempSubdirectory("epoll-pages-ready-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task ARangeIsReadyOnlyWhileEveryPageIsCachedAndReadAheadMakesItSo()
    {
        var path = Path.Combine(_folder, "file.bin");
        await File.WriteAllBytesAsync(path, new byte[Size]);
        using var file = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite);
        var fd = (int)file.DangerousGetHandle();

        // Just written: every page is in the cache. Unaligned ends still name whole pages.
        Assert.True(Ready(fd, 0, Size));
        Assert.True(Ready(fd, 4095, 2));
        Assert.True(Ready(fd, Size - 1, 1));

        // Dropped from the page cache (on tmpfs nothing can be: there the pages are the file).
        RandomAccess.FlushToDisk(file);
        await DropAsync(path);
        if (!Ready(fd, 0, Size))
        {
            // Only the read-ahead range becomes ready; it returns once it is read.
            Assert.True(PosixIO.ReadAhead(fd, 1024 * 1024, 1024 * 1024).IsSuccess);
            Assert.True(Ready(fd, 1024 * 1024, 1024 * 1024));
            Assert.False(Ready(fd, 0, Size));
            Assert.True(PosixIO.ReadAhead(fd, 0, Size).IsSuccess);
            Assert.True(Ready(fd, 0, Size));
        }

        // A range past the end of the file has no page to be ready; a read-ahead of it stops at the end.
        Assert.False(Ready(fd, Size + 8192, 4096));
        Assert.True(PosixIO.ReadAhead(fd, Size - 10, 4096).IsSuccess);
    }

    [Fact]
    public void AFileWithoutPagesIsNotReady()
    {
        // /dev/null has no page cache to be in (and cannot be mapped): whatever the call reports, not ready.
        using var file = File.OpenHandle("/dev/null");
        PosixIO.PagesReady((int)file.DangerousGetHandle(), 0, 4096, out var ready);
        Assert.False(ready);
    }

    /// <summary>
    /// The case a loop must never mistake for ready: pages whose read is queued but not done. A thread of this process,
    /// moved alone into a cgroup v1 blkio group that lets it read 64 KiB/s, reads the dropped file ahead; as soon as
    /// <c>cachestat</c> counts every page of it, <see cref="PosixIO.PagesReady"/> must still say no (a check on
    /// <c>cachestat</c> alone says yes here, and a loop's sendfile would then wait for the disk). Once the throttle is
    /// lifted and the read is done, it says yes.
    /// </summary>
    [ThrottledDiskFact]
    public async Task PagesWhoseReadIsQueuedButNotDoneAreNotReady()
    {
        const int length = 2 * 1024 * 1024;
        var path = Path.Combine(ThrottledDiskFactAttribute.Folder, $"epoll-in-flight-{Guid.NewGuid():N}.bin");
        var group = $"/sys/fs/cgroup/blkio/epoll-tests-{Guid.NewGuid():N}";
        string? device = null;
        Task<PosixResult>? read = null;
        try
        {
            using (var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write))
            {
                stream.Write(new byte[length]);
                stream.Flush(flushToDisk: true);
            }
            await DropAsync(path);
            device = ThrottledDiskFactAttribute.WholeDisk(path);
            Directory.CreateDirectory(group);
            await File.WriteAllTextAsync(Path.Combine(group, "blkio.throttle.read_bps_device"), $"{device} {64 * 1024}");
            using var file = File.OpenHandle(path);
            var fd = (int)file.DangerousGetHandle();
            Assert.False(Ready(fd, 0, length));

            var queued = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var reading = new TaskCompletionSource<PosixResult>(TaskCreationOptions.RunContinuationsAsynchronously);
            var reader = new Thread(() =>
            {
                try
                {
                    // This thread alone (cgroup v1 takes a thread id in "tasks"): its reads are the throttled ones.
                    var tid = new FileInfo("/proc/thread-self").LinkTarget!.Split('/')[^1];
                    File.WriteAllText(Path.Combine(group, "tasks"), tid);
                    // ReadAhead's two steps apart: the reads queued (returns at once), then the wait for them.
                    Assert.True(PosixIO.QueueReadAhead(fd, 0, length).IsSuccess);
                    queued.SetResult();
                    reading.SetResult(PosixIO.ReadAhead(fd, 0, length));
                }
                catch (Exception e)
                {
                    reading.SetException(e);
                }
            }) { IsBackground = true, Name = "throttled-reader" };
            reader.Start();
            read = reading.Task;

            await queued.Task.WaitAsync(TimeSpan.FromSeconds(20));
            // Every page is queued, so cachestat counts them all; 2 MiB at 64 KiB/s: most of it is still being read.
            Assert.True(PosixIO.CachedPages(fd, 0, length, out var cached).IsSuccess && cached >= length / Environment.SystemPageSize,
                $"{cached} pages cached after the read-ahead was queued");
            Assert.False(Ready(fd, 0, length), "pages still being read were taken for ready");

            await File.WriteAllTextAsync(Path.Combine(group, "blkio.throttle.read_bps_device"), $"{device} 0");
            Assert.True((await reading.Task.WaitAsync(TimeSpan.FromSeconds(60))).IsSuccess);
            Assert.True(Ready(fd, 0, length));
        }
        finally
        {
            if (device is not null && Directory.Exists(group))
            {
                // Lifted, so that a reader left behind by a failed assertion ends and the group empties.
                await File.WriteAllTextAsync(Path.Combine(group, "blkio.throttle.read_bps_device"), $"{device} 0");
                if (read is not null)
                {
                    await read.WaitAsync(TimeSpan.FromSeconds(60));
                }
            }
            File.Delete(path);
            if (Directory.Exists(group))
            {
                Directory.Delete(group);
            }
        }
    }

    private static bool Ready(int fd, long offset, long length)
    {
        var result = PosixIO.PagesReady(fd, offset, length, out var ready);
        Assert.True(result.IsSuccess, result.ToString());
        return ready;
    }

    /// <summary>posix_fadvise(DONTNEED) of the whole file, by dd (coreutils), as the bench's disk scenario does.</summary>
    private static async Task DropAsync(string path)
    {
        using var dd = Process.Start(new ProcessStartInfo("dd", ["if=" + path, "iflag=nocache", "count=0", "status=none"]))!;
        await dd.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(0, dd.ExitCode);
    }
}

/// <summary>
/// A fact that needs a throttled disk: root, a cgroup v1 blkio controller, and a temporary folder on a block device
/// (tmpfs and overlay folders have no device to throttle). Skipped elsewhere, with the reason.
/// </summary>
public sealed class ThrottledDiskFactAttribute : FactAttribute
{
    /// <summary>The folder on a block device: the system's temporary folder, else /var/tmp.</summary>
    public static string Folder { get; } = new[] { Path.GetTempPath(), "/var/tmp" }.FirstOrDefault(f => WholeDiskOrNull(f) is not null) ?? Path.GetTempPath();

    public ThrottledDiskFactAttribute()
    {
        if (!OperatingSystem.IsLinux() || !Environment.IsPrivilegedProcess)
        {
            Skip = "needs root on Linux";
        }
        else if (!File.Exists("/sys/fs/cgroup/blkio/cgroup.procs"))
        {
            Skip = "needs a cgroup v1 blkio controller at /sys/fs/cgroup/blkio";
        }
        else if (WholeDiskOrNull(Folder) is null)
        {
            Skip = "needs a temporary folder on a block device";
        }
    }

    /// <summary>The MAJ:MIN of the whole disk that holds <paramref name="path"/>.</summary>
    public static string WholeDisk(string path) => WholeDiskOrNull(path) ?? throw new InvalidOperationException($"{path} is on no block device");

    private static string? WholeDiskOrNull(string path)
    {
        try
        {
            using var stat = Process.Start(new ProcessStartInfo("stat", ["-c", "%Hd:%Ld", path]) { RedirectStandardOutput = true })!;
            var device = stat.StandardOutput.ReadToEnd().Trim();
            stat.WaitForExit();
            var sys = $"/sys/dev/block/{device}";
            if (stat.ExitCode != 0 || !Directory.Exists(sys))
            {
                return null;
            }
            // A partition is throttled through its disk.
            return File.Exists(Path.Combine(sys, "partition")) ? File.ReadAllText(Path.Combine(sys, "..", "dev")).Trim() : device;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }
}
