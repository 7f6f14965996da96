using EpollTransport;
using StaticFiles.Amped.Disk;

namespace StaticFiles.Amped.Tests.Disk;

/// <summary>
/// Fills one helper queue of a running <see cref="AmpedFileServer"/> as a disk that cannot keep up would: a job that
/// blocks its (only) helper, and behind it a job that takes the queue's last place. The next job posted to that
/// queue is refused, deterministically. Disposing releases both jobs and stops the loop their completions go to.
/// </summary>
internal sealed class StalledHelpers : IAsyncDisposable
{
    private readonly ManualResetEventSlim _released = new();
    private readonly EpollLoop _loop;
    private readonly List<ValueTask<int>> _completions = [];

    private StalledHelpers(EpollLoop loop) => _loop = loop;

    /// <summary>
    /// Blocks the helper of <paramref name="queue"/> and fills the queue (capacity 1). Returns once the helper is
    /// inside the blocking job.
    /// </summary>
    public static async Task<StalledHelpers> StartAsync(AmpedFileServer files, DiskQueue queue)
    {
        var stalled = new StalledHelpers(EpollLoop.Start("test-stalled"));
        var helpers = files.Disk.Helpers ?? throw new InvalidOperationException("The server has no helpers (Sped mode).");
        var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await stalled.PostAsync(helpers, queue, () =>
        {
            running.TrySetResult();
            stalled._released.Wait(WaitLimit);
        });
        await running.Task.WaitAsync(WaitLimit);
        await stalled.PostAsync(helpers, queue, () => stalled._released.Wait(WaitLimit));
        if (helpers.Queued(queue) != 1)
        {
            throw new InvalidOperationException($"Expected one queued job behind the stalled one, found {helpers.Queued(queue)}.");
        }
        return stalled;
    }

    public async ValueTask DisposeAsync()
    {
        _released.Set();
        foreach (var completion in _completions)
        {
            await completion.AsTask().WaitAsync(WaitLimit);
        }
        await _loop.DisposeAsync();
        _released.Dispose();
    }

    private async Task PostAsync(HelperPool helpers, DiskQueue queue, Action call)
    {
        // Posted from the loop thread, as the middleware posts.
        var posted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _loop.Schedule(_ =>
        {
            var job = new CallJob(call);
            var completion = job.Prepare(_loop, resumeOnThreadPool: false, CancellationToken.None);
            if (helpers.TryPost(job, queue))
            {
                _completions.Add(completion);
                posted.SetResult();
            }
            else
            {
                posted.SetException(new InvalidOperationException("The helper queue refused a stalling job."));
            }
        }, null);
        await posted.Task.WaitAsync(WaitLimit);
    }

    private sealed class CallJob(Action call) : DiskJob<int>
    {
        protected override int Execute()
        {
            call();
            return 0;
        }
    }
}
