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
