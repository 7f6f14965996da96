using System.Diagnostics.Metrics;
using System.Security.Cryptography;
using EpollTransport.Posix;
using EpollTransport;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using StaticFiles.Amped.Disk;
using StaticFiles.Amped.Interop;

namespace StaticFiles.Amped.Tests.Loop;

/// <summary>
/// Flash's point, on real Kestrel and one epoll reactor: a read that waits for the disk runs on a helper, the loop
/// serves other requests meanwhile, and the read's completion reaches the loop (blocked in epoll_wait by then)
/// through its eventfd.
/// </summary>
public sealed class SlowDiskTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("amped-slow-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public async Task AColdReadCompletesThroughTheEventfdWhileTheLoopServesAnotherRequest()
    {
        var content = RandomNumberGenerator.GetBytes(256 * 1024);
        File.WriteAllBytes(Path.Combine(_root, "slow.bin"), content);
        File.WriteAllText(Path.Combine(_root, "fast.txt"), "fast");
        using var disk = new SlowDisk("slow.bin");
        EpollLoop? reactor = null;
        var lastOnReactor = false;
        var options = new AmpedStaticFileOptions
        {
            ServeUnknownFileTypes = true,
            // The reactor's loop; a request that started on the thread pool resumes on the middleware's own loop.
            OnPrepareResponse = _ =>
            {
                lastOnReactor = Thread.CurrentThread.Name == "epoll-reactor-0";
                if (lastOnReactor)
                {
                    reactor ??= EpollLoop.Current;
                }
            },
        };
        using var files = new AmpedFileServer(options, _root, NullLogger.Instance, disk);
        await using var host = await KestrelHost.StartAsync(KestrelHost.EpollInline, app => app.Use(next => context => files.InvokeAsync(context, next)), reactorCount: 1);
        using var slowClient = new HttpClient { BaseAddress = host.BaseAddress };
        using var fastClient = new HttpClient { BaseAddress = host.BaseAddress };

        // Kestrel runs the first request of a connection on the thread pool; the next ones run on the reactor, unless
        // the next request arrived before Kestrel went back to reading (then it goes on where it is): ask until one
        // ran on the reactor, on each connection.
        foreach (var client in new[] { slowClient, fastClient })
        {
            lastOnReactor = false;
            for (var i = 0; i < 100 && !lastOnReactor; i++)
            {
                await client.GetStringAsync("/fast.txt").WaitAsync(WaitLimit);
            }
        }
        Assert.NotNull(reactor);
        var meterFactory = host.Services.GetRequiredService<IMeterFactory>();
        var wakeUpsBefore = LoopWakeUps.OfTransport(meterFactory);

        var slow = slowClient.GetByteArrayAsync("/slow.bin");
        await disk.ReadWaiting.WaitAsync(WaitLimit);

        // A helper sits in the read; the one reactor still answers another connection.
        Assert.Equal("fast", await fastClient.GetStringAsync("/fast.txt").WaitAsync(WaitLimit));
        Assert.False(slow.IsCompleted);

        disk.Release();
        var body = await slow.WaitAsync(WaitLimit);
        Assert.True(content.AsSpan().SequenceEqual(body));
        Assert.True(LoopWakeUps.OfTransport(meterFactory) > wakeUpsBefore);
    }

    /// <summary>
    /// The real calls, except that one file is never in the page cache and its first read blocks until released.
    /// </summary>
    private sealed class SlowDisk(string slowName) : IFileCalls, IDisposable
    {
        private readonly ManualResetEventSlim _released = new();
        private readonly TaskCompletionSource _readWaiting = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _slowFd = -1;

        /// <summary>Completes when a helper is blocked in the slow file's read.</summary>
        public Task ReadWaiting => _readWaiting.Task;

        public void Release() => _released.Set();

        public void Dispose() => _released.Dispose();

        public PosixResult OpenBeneath(int rootFd, string relativePath)
            => NoteSlowFd(relativePath, LinuxFileCalls.Instance.OpenBeneath(rootFd, relativePath));

        public PosixResult OpenBeneathCached(int rootFd, string relativePath)
            => NoteSlowFd(relativePath, LinuxFileCalls.Instance.OpenBeneathCached(rootFd, relativePath));

        public PosixResult StatFd(int fd, out Statx statx) => LinuxFileCalls.Instance.StatFd(fd, out statx);

        public PosixResult StatFdCached(int fd, out Statx statx) => LinuxFileCalls.Instance.StatFdCached(fd, out statx);

        public PosixResult ReadNoWait(int fd, Span<byte> buffer, long offset)
            => fd == Volatile.Read(ref _slowFd) ? PosixResult.FromErrno(Errnos.EAGAIN) : LinuxFileCalls.Instance.ReadNoWait(fd, buffer, offset);

        public PosixResult Read(int fd, Span<byte> buffer, long offset)
        {
            BlockIfSlow(fd);
            return LinuxFileCalls.Instance.Read(fd, buffer, offset);
        }

        // On the epoll transport the file leaves by sendfile, after a helper has read it ahead: the same wait.
        public PosixResult IsResident(int fd, long offset, long length, out bool resident)
        {
            resident = false;
            return fd == Volatile.Read(ref _slowFd) ? PosixResult.FromReturn(0) : PosixIO.PagesReady(fd, offset, length, out resident);
        }

        public PosixResult ReadAhead(int fd, long offset, long length)
        {
            BlockIfSlow(fd);
            return PosixIO.ReadAhead(fd, offset, length);
        }

        private void BlockIfSlow(int fd)
        {
            if (fd == Volatile.Read(ref _slowFd))
            {
                _readWaiting.TrySetResult();
                // The helper thread blocks here, as in a read from a slow disk; the loop must not.
                _released.Wait(WaitLimit);
            }
        }

        public void Close(int fd) => LinuxFileCalls.Instance.Close(fd);

        private PosixResult NoteSlowFd(string relativePath, PosixResult opened)
        {
            if (opened.IsSuccess && relativePath == slowName)
            {
                Volatile.Write(ref _slowFd, opened.IntValue);
            }
            return opened;
        }
    }
}
