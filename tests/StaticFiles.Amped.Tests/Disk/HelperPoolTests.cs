using EpollTransport;
using StaticFiles.Amped.Disk;
using StaticFiles.Amped.Tests.Loop;

namespace StaticFiles.Amped.Tests.Disk;

/// <summary>
/// The helpers: blocking calls run on <c>amped-helper-N</c> threads and their completions come back on the loop
/// that posted them, through its work queue and eventfd.
/// </summary>
public class HelperPoolTests
{

    [Fact]
    public async Task AJobRunsOnAHelperAndCompletesOnTheLoopThroughItsEventfd()
    {
        await using var loop = EpollLoop.Start("test-amped-a");
        using var pool = new HelperPool(metadataHelpers: 1, dataHelpers: 1, queueCapacity: 4);
        using var deadline = new CancellationTokenSource(WaitLimit);
        while (true)
        {
            long wakeUpsWhenTheHelperStarted = -1;
            var job = new FuncJob(() =>
            {
                wakeUpsWhenTheHelperStarted = LoopWakeUps.OfStartedLoop("test-amped-a");
                return Thread.CurrentThread.Name;
            });

            var resumedOn = await PostAndResumeAsync(loop, pool, job, DiskQueue.Metadata).WaitAsync(deadline.Token);

            Assert.Equal("amped-helper-0", job.LastResult);
            // The request resumed on the loop: the helper never completes it directly.
            Assert.Equal("test-amped-a", resumedOn);
            // Usually the loop is back in epoll_wait before the helper finishes, and then only the eventfd can wake
            // it. When the helper wins that race the loop finds the completion without a wake-up: post again.
            if (LoopWakeUps.OfStartedLoop("test-amped-a") > wakeUpsWhenTheHelperStarted)
            {
                return;
            }
        }
    }

    [Fact]
    public async Task AMetadataCallDoesNotWaitBehindABlockedRead()
    {
        await using var loop = EpollLoop.Start("test-amped-b");
        using var pool = new HelperPool(metadataHelpers: 1, dataHelpers: 1, queueCapacity: 4);
        using var diskStalled = new ManualResetEventSlim();
        var (slowRead, read) = await StallTheDataHelperAsync(loop, pool, diskStalled);

        // The data helper is stuck in a read; the open still completes, on the metadata helper.
        var open = new FuncJob(() => Thread.CurrentThread.Name);
        await PostAndResumeAsync(loop, pool, open, DiskQueue.Metadata).WaitAsync(WaitLimit);
        Assert.Equal("amped-helper-0", open.LastResult);
        Assert.False(read.IsCompleted);

        diskStalled.Set();
        Assert.Equal("test-amped-b", await read.WaitAsync(WaitLimit));
        Assert.Equal("read", slowRead.LastResult);
    }

    [Fact]
    public async Task AFullQueueRefusesTheJobInsteadOfGrowing()
    {
        await using var loop = EpollLoop.Start("test-amped-c");
        using var pool = new HelperPool(metadataHelpers: 1, dataHelpers: 1, queueCapacity: 1);
        using var diskStalled = new ManualResetEventSlim();
        var (_, running) = await StallTheDataHelperAsync(loop, pool, diskStalled);

        // One job fits in the queue behind the running one; the next is refused.
        var queued = PostAndResumeAsync(loop, pool, new FuncJob(() => ""), DiskQueue.Data);
        var refused = new FuncJob(() => "");
        var posted = await OnLoopAsync(loop, () =>
        {
            _ = refused.Prepare(loop, resumeOnThreadPool: false, CancellationToken.None);
            return pool.TryPost(refused, DiskQueue.Data);
        });

        Assert.False(posted);
        Assert.Equal(1, pool.Queued(DiskQueue.Data));
        diskStalled.Set();
        await Task.WhenAll(running, queued).WaitAsync(WaitLimit);
        Assert.Equal(0, refused.Runs);
    }

    [Fact]
    public async Task AJobCancelledBeforeAHelperTakesItIsNotRun()
    {
        await using var loop = EpollLoop.Start("test-amped-d");
        using var pool = new HelperPool(metadataHelpers: 1, dataHelpers: 1, queueCapacity: 4);
        using var diskStalled = new ManualResetEventSlim();
        var (_, running) = await StallTheDataHelperAsync(loop, pool, diskStalled);

        using var clientGone = new CancellationTokenSource();
        var abandoned = new FuncJob(() => "");
        var waiting = PostAndResumeAsync(loop, pool, abandoned, DiskQueue.Data, clientGone.Token);
        clientGone.Cancel();
        diskStalled.Set();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting.WaitAsync(WaitLimit));
        await running.WaitAsync(WaitLimit);
        Assert.Equal(0, abandoned.Runs);
    }

    [Fact]
    public async Task AFailingCallFailsItsRequestAndTheHelperServesTheNext()
    {
        await using var loop = EpollLoop.Start("test-amped-e");
        using var pool = new HelperPool(metadataHelpers: 1, dataHelpers: 1, queueCapacity: 4);

        var failing = PostAndResumeAsync(loop, pool, new FuncJob(() => throw new IOException("EIO")), DiskQueue.Metadata);
        var error = await Assert.ThrowsAsync<IOException>(() => failing.WaitAsync(WaitLimit));
        Assert.Equal("EIO", error.Message);

        var next = new FuncJob(() => "fine");
        await PostAndResumeAsync(loop, pool, next, DiskQueue.Metadata).WaitAsync(WaitLimit);
        Assert.Equal("fine", next.LastResult);
    }

    /// <summary>Posts a read that blocks its (only) data helper until <paramref name="diskStalled"/> is set; returns once it runs.</summary>
    private static async Task<(FuncJob Job, Task<string?> Resumed)> StallTheDataHelperAsync(EpollLoop loop, HelperPool pool, ManualResetEventSlim diskStalled)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var job = new FuncJob(() =>
        {
            started.SetResult();
            diskStalled.Wait(WaitLimit);
            return "read";
        });
        var resumed = PostAndResumeAsync(loop, pool, job, DiskQueue.Data);
        await started.Task.WaitAsync(WaitLimit);
        return (job, resumed);
    }

    /// <summary>Posts from the loop thread (as the middleware does) and returns the thread the awaiter resumed on.</summary>
    private static async Task<string?> PostAndResumeAsync(EpollLoop loop, HelperPool pool, FuncJob job, DiskQueue queue,
        CancellationToken cancellation = default)
    {
        var resumed = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
        loop.Schedule(async _ =>
        {
            try
            {
                var completion = job.Prepare(loop, resumeOnThreadPool: false, cancellation);
                Assert.True(pool.TryPost(job, queue));
                job.LastResult = await completion;
                resumed.SetResult(Thread.CurrentThread.Name);
            }
            catch (Exception ex)
            {
                resumed.SetException(ex);
            }
        }, null);
        return await resumed.Task;
    }

    private static async Task<T> OnLoopAsync<T>(EpollLoop loop, Func<T> action)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        loop.Schedule(_ => done.SetResult(action()), null);
        return await done.Task.WaitAsync(WaitLimit);
    }

    private sealed class FuncJob(Func<string?> call) : DiskJob<string?>
    {
        private int _runs;

        public int Runs => Volatile.Read(ref _runs);

        public string? LastResult { get; set; }

        protected override string? Execute()
        {
            Interlocked.Increment(ref _runs);
            return call();
        }
    }
}
