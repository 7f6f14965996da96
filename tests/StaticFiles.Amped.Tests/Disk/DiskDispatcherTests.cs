using System.Collections.Concurrent;
using EpollTransport;
using EpollTransport.Posix;
using Microsoft.Extensions.Logging.Abstractions;
using StaticFiles.Amped.Diagnostics;
using StaticFiles.Amped.Disk;
using StaticFiles.Amped.Interop;

namespace StaticFiles.Amped.Tests.Disk;

/// <summary>
/// The dispatcher's decision table: SPED makes every call where the request runs; AMPED answers on the loop what the
/// kernel can answer without waiting and posts only the rest; a request resumes on its reactor, or else on the
/// thread pool, never on the middleware's own loop.
/// </summary>
public sealed class DiskDispatcherTests : IDisposable
{
    private readonly AmpedMetrics _metrics = new(meterFactory: null, requestPath: "");

    public void Dispose() => _metrics.Dispose();

    [Fact]
    public async Task SpedMakesEveryCallWhereTheRequestRunsAndPostsNothing()
    {
        var disk = new RecordedCalls { CachedOpen = Errno(Errnos.EAGAIN), NoWaitRead = Errno(Errnos.EAGAIN) };
        using var dispatcher = Create(AmpedMode.Sped, disk);

        var open = dispatcher.OpenAsync(RecordedCalls.RootFd, "a.txt", CancellationToken.None);
        var read = dispatcher.ReadAsync(RecordedCalls.FileFd, new byte[8], 0, CancellationToken.None);

        Assert.True(open.IsCompletedSuccessfully && read.IsCompletedSuccessfully);
        Assert.True((await open).IsRegularFile);
        Assert.Equal(8, (await read).Value);
        Assert.Null(dispatcher.Helpers);
        var here = Thread.CurrentThread.Name;
        Assert.Equal(new[] { (nameof(IFileCalls.OpenBeneath), here), (nameof(IFileCalls.StatFd), here), (nameof(IFileCalls.Read), here) }, disk.Calls);
    }

    [Fact]
    public async Task AmpedAnswersOnTheLoopWhatTheKernelHasCached()
    {
        // Half of the range is in the page cache: the read returns that half rather than waiting for the rest.
        var disk = new RecordedCalls { NoWaitRead = PosixResult.FromReturn(4) };
        using var dispatcher = Create(AmpedMode.Amped, disk);

        var open = dispatcher.OpenAsync(RecordedCalls.RootFd, "a.txt", CancellationToken.None);
        var read = dispatcher.ReadAsync(RecordedCalls.FileFd, new byte[8], 0, CancellationToken.None);

        Assert.True(open.IsCompletedSuccessfully && read.IsCompletedSuccessfully);
        Assert.True((await open).IsRegularFile);
        Assert.Equal(4, (await read).Value);
        Assert.Equal(new[] { nameof(IFileCalls.OpenBeneathCached), nameof(IFileCalls.StatFdCached), nameof(IFileCalls.ReadNoWait) },
            disk.Calls.Select(c => c.Call));
    }

    [Theory]
    [InlineData(Errnos.EAGAIN, true)]
    [InlineData(Errnos.EOPNOTSUPP, true)]
    [InlineData(Errnos.EIO, false)]
    public async Task AmpedPostsAReadOnlyWhenItCouldNotBeMadeWithoutWaiting(int noWaitErrno, bool posted)
    {
        var disk = new RecordedCalls { NoWaitRead = Errno(noWaitErrno) };
        using var dispatcher = Create(AmpedMode.Amped, disk);

        var read = await dispatcher.ReadAsync(RecordedCalls.FileFd, new byte[8], 0, CancellationToken.None).AsTask().WaitAsync(WaitLimit);

        Assert.Equal(posted ? 8 : -Errnos.EIO, read.Value);
        Assert.Equal(posted ? new[] { DataHelper } : [], ThreadsOf(disk, nameof(IFileCalls.Read)));
    }

    [Theory]
    [InlineData(Errnos.EAGAIN, true)]
    [InlineData(Errnos.EMFILE, true)]
    [InlineData(Errnos.ENOENT, false)]
    [InlineData(Errnos.EACCES, false)]
    [InlineData(Errnos.EXDEV, false)]
    public async Task AmpedPostsAnOpenUnlessTheDentryCacheAnsweredIt(int cachedErrno, bool posted)
    {
        var disk = new RecordedCalls { CachedOpen = Errno(cachedErrno) };
        using var dispatcher = Create(AmpedMode.Amped, disk);

        var open = await dispatcher.OpenAsync(RecordedCalls.RootFd, "a.txt", CancellationToken.None).AsTask().WaitAsync(WaitLimit);

        Assert.Equal(posted, open.IsRegularFile);
        Assert.Equal(posted ? new[] { MetadataHelper } : [], ThreadsOf(disk, nameof(IFileCalls.OpenBeneath)));
    }

    [Fact]
    public async Task OffAReactorTheRequestResumesOnTheThreadPool()
    {
        var disk = new RecordedCalls { CachedOpen = Errno(Errnos.EAGAIN) };
        using var dispatcher = Create(AmpedMode.Amped, disk);

        var (opened, resumedOnThreadPool, resumedOn) = await Task.Run(async () =>
        {
            var open = await dispatcher.OpenAsync(RecordedCalls.RootFd, "a.txt", CancellationToken.None);
            return (open, Thread.CurrentThread.IsThreadPoolThread, Thread.CurrentThread.Name);
        }).WaitAsync(WaitLimit);

        Assert.True(opened.IsRegularFile);
        Assert.True(resumedOnThreadPool);
        Assert.NotEqual("amped-loop", resumedOn);
    }

    [Fact]
    public async Task OnAReactorTheRequestResumesOnThatReactor()
    {
        var disk = new RecordedCalls { CachedOpen = Errno(Errnos.EAGAIN) };
        using var dispatcher = Create(AmpedMode.Amped, disk);
        await using var reactor = EpollLoop.Start("test-reactor");
        var resumed = new TaskCompletionSource<(OpenedFile, string?)>(TaskCreationOptions.RunContinuationsAsynchronously);

        reactor.Schedule(async _ =>
        {
            try
            {
                var open = await dispatcher.OpenAsync(RecordedCalls.RootFd, "a.txt", CancellationToken.None);
                resumed.SetResult((open, Thread.CurrentThread.Name));
            }
            catch (Exception ex)
            {
                resumed.SetException(ex);
            }
        }, null);
        var (opened, resumedOn) = await resumed.Task.WaitAsync(WaitLimit);

        Assert.True(opened.IsRegularFile);
        Assert.Equal(new[] { MetadataHelper }, ThreadsOf(disk, nameof(IFileCalls.OpenBeneath)));
        Assert.Equal("test-reactor", resumedOn);
    }

    // One helper of each kind, so that each has a known thread name.
    private const string MetadataHelper = "amped-helper-0";
    private const string DataHelper = "amped-helper-1";

    private DiskDispatcher Create(AmpedMode mode, IFileCalls calls)
        => new(new AmpedStaticFileOptions { Mode = mode, MetadataHelperThreads = 1, DataHelperThreads = 1 }, calls, _metrics, NullLogger.Instance);

    private static string?[] ThreadsOf(RecordedCalls disk, string call) => disk.Calls.Where(c => c.Call == call).Select(c => c.Thread).ToArray();

    private static PosixResult Errno(int errno) => PosixResult.FromErrno(errno);

    /// <summary>
    /// File calls that touch no disk: opens find a regular file, reads fill the buffer, the calls that never wait answer
    /// as scripted; each call is recorded with the name of the thread that made it.
    /// </summary>
    private sealed class RecordedCalls : IFileCalls
    {
        public const int RootFd = 1000;
        public const int FileFd = 1001;
        private readonly ConcurrentQueue<(string Call, string? Thread)> _calls = new();

        public PosixResult CachedOpen { get; init; } = PosixResult.FromReturn(FileFd);

        public PosixResult NoWaitRead { get; init; } = PosixResult.FromReturn(8);

        public IReadOnlyCollection<(string Call, string? Thread)> Calls => _calls;

        public PosixResult OpenBeneath(int rootFd, string relativePath) => Record(nameof(OpenBeneath), PosixResult.FromReturn(FileFd));

        public PosixResult OpenBeneathCached(int rootFd, string relativePath) => Record(nameof(OpenBeneathCached), CachedOpen);

        public PosixResult StatFd(int fd, out Statx statx) => Record(nameof(StatFd), RegularFile(out statx));

        public PosixResult StatFdCached(int fd, out Statx statx) => Record(nameof(StatFdCached), RegularFile(out statx));

        public PosixResult ReadNoWait(int fd, Span<byte> buffer, long offset) => Record(nameof(ReadNoWait), NoWaitRead);

        public PosixResult Read(int fd, Span<byte> buffer, long offset) => Record(nameof(Read), PosixResult.FromReturn(buffer.Length));

        public void Close(int fd) => Record(nameof(Close), PosixResult.FromReturn(0));

        private static PosixResult RegularFile(out Statx statx)
        {
            statx = default;
            statx.stx_mode = FileInterop.S_IFREG;
            return PosixResult.FromReturn(0);
        }

        private PosixResult Record(string call, PosixResult result)
        {
            _calls.Enqueue((call, Thread.CurrentThread.Name));
            return result;
        }
    }
}
