using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace StaticFiles.Amped.Disk;

/// <summary>
/// Flash's helpers, as dedicated threads named <c>amped-helper-N</c> (not the .NET thread pool, whose threads the
/// application needs, and which would grow without bound while they sit in blocking reads). Two bounded queues
/// with their own helpers: metadata calls never wait behind data reads. A full queue refuses the job, so that a
/// disk that cannot keep up turns into 503s instead of an unbounded backlog.
/// </summary>
internal sealed partial class HelperPool : IDisposable
{
    private readonly BlockingCollection<DiskJob> _metadata;
    private readonly BlockingCollection<DiskJob> _data;
    private readonly Thread[] _threads;
    private readonly ILogger _logger;

    public HelperPool(int metadataHelpers, int dataHelpers, int queueCapacity, ILogger? logger = null)
    {
        _logger = logger ?? NullLogger.Instance;
        ArgumentOutOfRangeException.ThrowIfLessThan(metadataHelpers, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(dataHelpers, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(queueCapacity, 1);
        _metadata = new BlockingCollection<DiskJob>(new ConcurrentQueue<DiskJob>(), queueCapacity);
        _data = new BlockingCollection<DiskJob>(new ConcurrentQueue<DiskJob>(), queueCapacity);
        _threads = new Thread[metadataHelpers + dataHelpers];
        for (int i = 0; i < _threads.Length; i++)
        {
            var queue = i < metadataHelpers ? _metadata : _data;
            _threads[i] = new Thread(static state => Serve((BlockingCollection<DiskJob>)state!))
            {
                IsBackground = true,
                Name = $"amped-helper-{i}",
            };
            _threads[i].UnsafeStart(queue);
        }
    }

    /// <summary>
    /// Queues <paramref name="job"/>, armed by <see cref="DiskJob{T}.Prepare"/>, for a helper of <paramref name="queue"/>.
    /// False when the queue is full or the pool is stopping: then no helper sees the job, nobody awaits it, and it
    /// stays reusable as it is.
    /// </summary>
    public bool TryPost(DiskJob job, DiskQueue queue)
    {
        try
        {
            return (queue == DiskQueue.Metadata ? _metadata : _data).TryAdd(job);
        }
        catch (InvalidOperationException)
        {
            return false; // CompleteAdding was called: the pool is stopping.
        }
    }

    /// <summary>Jobs waiting in <paramref name="queue"/> (not the ones running).</summary>
    public int Queued(DiskQueue queue) => (queue == DiskQueue.Metadata ? _metadata : _data).Count;

    /// <summary>
    /// How long <see cref="Dispose"/> waits for the helpers to finish the jobs already queued. A helper still in a
    /// call after it (a read from a dead NFS or FUSE mount never returns) is abandoned: it is a background thread,
    /// and host shutdown must not hang on it.
    /// </summary>
    internal TimeSpan StopTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Lets the helpers finish the jobs already queued, then ends their threads; abandons the ones still busy after
    /// <see cref="StopTimeout"/>, and fails the jobs they left queued (their requests end with an error instead of
    /// waiting for ever, and no job runs after the middleware has closed what it uses).
    /// </summary>
    public void Dispose()
    {
        _metadata.CompleteAdding();
        _data.CompleteAdding();
        var deadline = Environment.TickCount64 + (long)StopTimeout.TotalMilliseconds;
        var stuck = 0;
        foreach (var thread in _threads)
        {
            if (!thread.Join(TimeSpan.FromMilliseconds(Math.Max(0, deadline - Environment.TickCount64))))
            {
                stuck++;
            }
        }
        if (stuck == 0)
        {
            _metadata.Dispose();
            _data.Dispose();
            return;
        }
        LogHelpersStuck(_logger, stuck, StopTimeout.TotalSeconds);
        // A stuck helper may still take from its queue when its call returns: what it finds is failed, not run.
        foreach (var queue in new[] { _metadata, _data })
        {
            while (queue.TryTake(out var job))
            {
                job.Abandon();
            }
        }
    }

    private static void Serve(BlockingCollection<DiskJob> queue)
    {
        foreach (var job in queue.GetConsumingEnumerable())
        {
            // DiskJob.Run catches everything: a failed call fails its request, never the helper.
            job.Run();
        }
    }

    [LoggerMessage(4, LogLevel.Warning, "{Count} helper thread(s) still in a disk call {Seconds} s after the static files stopped; they are abandoned, and the jobs queued behind them fail.", EventName = "HelpersStuck")]
    private static partial void LogHelpersStuck(ILogger logger, int count, double seconds);
}
