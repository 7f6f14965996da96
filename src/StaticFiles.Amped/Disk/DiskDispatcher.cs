using System.Diagnostics;
using EpollTransport;
using EpollTransport.Posix;
using Microsoft.Extensions.Logging;
using StaticFiles.Amped.Diagnostics;

namespace StaticFiles.Amped.Disk;

/// <summary>
/// Decides where each disk call of a request runs, and where the request goes on afterwards. In
/// <see cref="AmpedMode.Amped"/> a call is first made where the request runs, in the form that never waits for the
/// disk (<c>openat2</c> with <c>RESOLVE_CACHED</c> and <c>statx</c> with <c>AT_STATX_DONT_SYNC</c>; <c>preadv2</c>
/// with <c>RWF_NOWAIT</c>); only a call the kernel cannot answer that way goes to a helper, and its completion comes
/// back through a loop. In <see cref="AmpedMode.Sped"/> every call is made where the request runs, which waits for
/// the disk. What it does is counted in <see cref="AmpedMetrics"/>.
/// </summary>
/// <remarks>
/// Who runs what, by mode and by where the request runs:
/// <code>
/// mode    scheduling  the request runs on  a call that may block  its completion runs on  then the request runs on
/// AMPED   inline      its epoll reactor    amped-helper-N         that reactor            that reactor
/// AMPED   default     the thread pool      amped-helper-N         amped-loop              the thread pool
/// SPED    either      as above             the request's thread   (no completion)         (it never left)
/// </code>
/// Inline is the epoll transport's <c>UnsafePreferInlineScheduling</c>; default is any thread that is not an epoll
/// reactor (the transport's default scheduling, or another transport). In AMPED the calls that never wait run where
/// the request runs. <c>amped-loop</c> is the middleware's own loop, started by the first call posted from outside a
/// reactor: it runs completions only, and a request it completes goes back to the thread pool before <c>next</c> or
/// any write, so that the application (and its blocking calls) never runs there.
/// </remarks>
internal sealed class DiskDispatcher : IDisposable
{
    private readonly IFileCalls _calls;
    private readonly AmpedMetrics _metrics;
    private readonly HelperPool? _helpers;
    private readonly Lazy<EpollLoop> _ownLoop = new(() => EpollLoop.Start("amped-loop"));

    /// <summary>Starts the helpers that <paramref name="options"/> ask for, none in <see cref="AmpedMode.Sped"/>.</summary>
    public DiskDispatcher(AmpedStaticFileOptions options, IFileCalls calls, AmpedMetrics metrics, ILogger logger)
    {
        Mode = options.Mode;
        _calls = calls;
        _metrics = metrics;
        if (Mode == AmpedMode.Amped)
        {
            _helpers = new HelperPool(options.MetadataHelperThreads, options.DataHelperThreads, options.HelperQueueCapacity, logger);
        }
    }

    /// <summary>Where the calls that may block run: on a helper, or where the request runs.</summary>
    public AmpedMode Mode { get; }

    /// <summary>The helper pool, or null in <see cref="AmpedMode.Sped"/>.</summary>
    public HelperPool? Helpers => _helpers;

    /// <summary>
    /// <c>openat2</c> of <paramref name="relativePath"/> beneath <paramref name="rootFd"/>, then <c>statx</c> of the
    /// fd. A job the helpers refuse (their queue is full) comes back as EAGAIN, like any other "not now".
    /// </summary>
    /// <remarks><paramref name="rootFd"/> must stay open until the returned task completes.</remarks>
    public ValueTask<OpenedFile> OpenAsync(int rootFd, string relativePath, CancellationToken aborted)
    {
        if (Mode == AmpedMode.Sped)
        {
            return new(OpenFileJob.Open(_calls, rootFd, relativePath));
        }
        if (OpenFileJob.TryOpenCached(_calls, rootFd, relativePath, out var cached))
        {
            _metrics.OpenCached();
            return new(cached);
        }
        return PostAsync(new OpenFileJob(_calls, rootFd, relativePath), DiskQueue.Metadata, OpenedFile.Failed(Errnos.EAGAIN), aborted);
    }

    /// <summary>
    /// Reads up to <paramref name="buffer"/>'s length from <paramref name="offset"/>. A read that finds only part of
    /// the range in the page cache returns that part; the next call finds where the cache ends and goes to a helper.
    /// </summary>
    public ValueTask<PosixResult> ReadAsync(int fd, Memory<byte> buffer, long offset, CancellationToken aborted)
    {
        if (Mode == AmpedMode.Sped)
        {
            return new(_calls.Read(fd, buffer.Span, offset));
        }
        var cached = _calls.ReadNoWait(fd, buffer.Span, offset);
        if (cached.IsSuccess)
        {
            _metrics.ReadNoWait();
            return new(cached);
        }
        // EOPNOTSUPP: the file system cannot read without waiting, so every read goes to a helper. Any other error
        // is the read's answer.
        return cached.WouldBlock || cached.Errno == Errnos.EOPNOTSUPP ? ReadOnHelperAsync(fd, buffer, offset, aborted) : new(cached);
    }

    /// <summary>
    /// Makes sure a range is in the page cache before the transport sends it with sendfile (which would read it
    /// synchronously on the loop otherwise): answered on the loop when mincore finds it read, else a helper
    /// reads it ahead. Success, or the error (EAGAIN: refused, the helper queue is full).
    /// </summary>
    public ValueTask<PosixResult> ReadAheadAsync(int fd, long offset, long length, CancellationToken aborted)
    {
        if (Mode == AmpedMode.Sped)
        {
            // SPED waits for the disk on the loop by design. Here, not in the transport's sendfile: the transport would
            // find the range not read and read it ahead off its reactor.
            return new(_calls.ReadAhead(fd, offset, length));
        }
        var check = _calls.IsResident(fd, offset, length, out var resident);
        if (check.IsSuccess && resident)
        {
            _metrics.ResidentOnLoop();
            return new(check);
        }
        return PostAsync(new ReadAheadJob(_calls, fd, offset, length), DiskQueue.Data, PosixResult.FromErrno(Errnos.EAGAIN), aborted);
    }

    /// <summary>
    /// Stops the helpers (bounded: see <see cref="HelperPool.StopTimeout"/>), then the middleware's own loop, which
    /// runs the completions of the jobs they finished meanwhile.
    /// </summary>
    public void Dispose()
    {
        _helpers?.Dispose();
        if (_ownLoop.IsValueCreated)
        {
            _ownLoop.Value.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    private async ValueTask<PosixResult> ReadOnHelperAsync(int fd, Memory<byte> buffer, long offset, CancellationToken aborted)
    {
        using var job = new ReadFileJob(_calls, fd, buffer.Length, offset);
        var read = await PostAsync(job, DiskQueue.Data, PosixResult.FromErrno(Errnos.EAGAIN), aborted);
        if (read.IsSuccess)
        {
            // Back where the request runs (its reactor, or the thread pool), which owns the response's memory again.
            job.Data(read.IntValue).CopyTo(buffer.Span);
        }
        return read;
    }

    /// <summary>
    /// Posts <paramref name="job"/> to a helper and awaits its completion; <paramref name="refused"/> when the queue
    /// is full or the pool is stopping. The completion goes to the epoll reactor that runs the request inline, and
    /// the request goes on right there; from any other thread it goes to the middleware's own loop, and the request
    /// goes on on the thread pool.
    /// </summary>
    private async ValueTask<T> PostAsync<T>(DiskJob<T> job, DiskQueue queue, T refused, CancellationToken aborted)
    {
        var reactor = EpollLoop.Current;
        var completion = job.Prepare(reactor ?? _ownLoop.Value, resumeOnThreadPool: reactor is null, aborted);
        var posted = Stopwatch.GetTimestamp();
        // Only Amped posts, and Amped has helpers.
        if (!_helpers!.TryPost(job, queue))
        {
            _metrics.Refused();
            return refused;
        }
        // Completes only after the helper ran the job (or skipped it, cancelled): the call is over either way.
        var result = await completion;
        _metrics.HelperJob(queue, Stopwatch.GetElapsedTime(posted));
        return result;
    }
}
