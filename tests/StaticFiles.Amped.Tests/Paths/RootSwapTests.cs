using System.Net;
using EpollTransport.Posix;
using StaticFiles.Amped.Disk;
using StaticFiles.Amped.Interop;
using StaticFiles.Amped.Tests.Caching;

namespace StaticFiles.Amped.Tests.Paths;

/// <summary>
/// A symlink-swap deploy (<c>current -> releases/N</c>, replaced by a rename): the middleware follows the root path
/// to the new release, reopens it and forgets what it cached from the old one; a request already opening a file
/// beneath the old root finishes there, on a root fd that stays open until it is done.
/// </summary>
public sealed class RootSwapTests : IAsyncLifetime
{
    private readonly FileServerHost _host = new();

    public Task InitializeAsync()
    {
        WriteRelease("releases/1", ("a.txt", "release one"));
        WriteRelease("releases/2", ("a.txt", "release two, longer"), ("only-new.txt", "new in two"));
        File.CreateSymbolicLink(_host.PathOf("current"), "releases/1");
        return Task.CompletedTask;
    }

    public Task DisposeAsync() => _host.DisposeAsync().AsTask();

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task TheNewReleaseIsServedOnceTheRootSymlinkIsSwapped(bool caches)
    {
        var options = caches ? new AmpedStaticFileOptions() : new AmpedStaticFileOptions { MissCacheEntries = 0, FileCacheEntries = 0 };
        var client = await _host.StartAsync(options, root: "current");
        Assert.Equal("release one", await client.GetStringAsync("/a.txt"));
        // A miss, which the negative cache (when on) now remembers.
        Assert.Equal("endpoint", await client.GetStringAsync("/only-new.txt"));

        var reopened = _host.Files.NextRootReplacement;
        await SwapAsync("releases/2");
        await reopened.WaitAsync(WaitLimit);

        Assert.Equal("release two, longer", await client.GetStringAsync("/a.txt"));
        Assert.Equal("new in two", await client.GetStringAsync("/only-new.txt"));
    }

    [Fact]
    public async Task AnOpenInFlightDuringTheSwapFinishesBeneathTheOldRootWhichClosesAfterIt()
    {
        using var disk = new ParkedOpen("a.txt");
        var options = new AmpedStaticFileOptions { MissCacheEntries = 0, FileCacheEntries = 0 };
        var client = await _host.StartAsync(options, disk, root: "current");
        var request = client.GetAsync("/a.txt");
        await disk.Parked.WaitAsync(WaitLimit);

        var reopened = _host.Files.NextRootReplacement;
        await SwapAsync("releases/2");
        await reopened.WaitAsync(WaitLimit);
        disk.Release();
        using var response = await request.WaitAsync(WaitLimit);

        // The helper's openat2 ran on the old root's fd after the swap: still open, still the old release.
        Assert.Equal(0, disk.Errno);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("release one", await response.Content.ReadAsStringAsync());
        // That request held the last reference to the old root, and closed it as it let go.
        Assert.DoesNotContain(_host.PathOf("releases/1"), OpenPaths());
        Assert.Equal("release two, longer", await client.GetStringAsync("/a.txt"));
    }

    /// <summary><c>ln -sfn target current.tmp &amp;&amp; mv -T current.tmp current</c>: the rename replaces the link atomically.</summary>
    /// <remarks>File.Move follows a link to a folder and refuses it; mv -T renames the link itself.</remarks>
    private async Task SwapAsync(string target)
    {
        File.CreateSymbolicLink(_host.PathOf("current.tmp"), target);
        using var mv = System.Diagnostics.Process.Start("mv", ["-T", _host.PathOf("current.tmp"), _host.PathOf("current")]);
        await mv.WaitForExitAsync().WaitAsync(WaitLimit);
        Assert.Equal(0, mv.ExitCode);
    }

    private void WriteRelease(string folder, params (string Name, string Content)[] files)
    {
        Directory.CreateDirectory(_host.PathOf(folder));
        foreach (var (name, content) in files)
        {
            File.WriteAllText(_host.PathOf(Path.Combine(folder, name)), content);
        }
    }

    /// <summary>What this process's open fds name.</summary>
    private static List<string?> OpenPaths()
        => Directory.EnumerateFileSystemEntries("/proc/self/fd").Select(fd => new FileInfo(fd).LinkTarget).ToList();

    /// <summary>
    /// The real calls, except that the first helper open of one file waits until released, so that the root can be
    /// swapped while a request is inside its lookup. The loop's cached open of that file answers "not cached".
    /// </summary>
    private sealed class ParkedOpen(string parkedName) : IFileCalls, IDisposable
    {
        private readonly ManualResetEventSlim _released = new();
        private readonly TaskCompletionSource _parked = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _errno = -1;

        /// <summary>Completes when a helper waits inside the open.</summary>
        public Task Parked => _parked.Task;

        /// <summary>The errno of the parked open once it ran: 0 for success.</summary>
        public int Errno => Volatile.Read(ref _errno);

        public void Release() => _released.Set();

        public void Dispose() => _released.Dispose();

        public PosixResult OpenBeneath(int rootFd, string relativePath)
        {
            if (relativePath != parkedName || !_parked.TrySetResult())
            {
                return LinuxFileCalls.Instance.OpenBeneath(rootFd, relativePath);
            }
            _released.Wait(WaitLimit);
            var opened = LinuxFileCalls.Instance.OpenBeneath(rootFd, relativePath);
            Volatile.Write(ref _errno, opened.IsSuccess ? 0 : opened.Errno);
            return opened;
        }

        public PosixResult OpenBeneathCached(int rootFd, string relativePath)
            => relativePath == parkedName && !_parked.Task.IsCompleted
                ? PosixResult.FromErrno(Errnos.EAGAIN)
                : LinuxFileCalls.Instance.OpenBeneathCached(rootFd, relativePath);

        public PosixResult StatFd(int fd, out Statx statx) => LinuxFileCalls.Instance.StatFd(fd, out statx);

        public PosixResult StatFdCached(int fd, out Statx statx) => LinuxFileCalls.Instance.StatFdCached(fd, out statx);

        public PosixResult ReadNoWait(int fd, Span<byte> buffer, long offset) => LinuxFileCalls.Instance.ReadNoWait(fd, buffer, offset);

        public PosixResult Read(int fd, Span<byte> buffer, long offset) => LinuxFileCalls.Instance.Read(fd, buffer, offset);

        public void Close(int fd) => LinuxFileCalls.Instance.Close(fd);
    }
}
