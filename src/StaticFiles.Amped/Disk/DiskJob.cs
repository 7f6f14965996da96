using System.Threading.Tasks.Sources;
using EpollTransport;

namespace StaticFiles.Amped.Disk;

/// <summary>What a helper thread runs: a <see cref="DiskJob{T}"/> without its result type.</summary>
internal abstract class DiskJob
{
    /// <summary>Helper thread; never throws.</summary>
    internal abstract void Run();

    /// <summary>Completes the job with an error without running it: the pool stopped with the job still queued.</summary>
    internal abstract void Abandon();
}

/// <summary>
/// One call that may block, and its completion: <see cref="Execute"/> runs on a helper thread, and the result is
/// handed back on the loop the job was prepared with, through the loop's work queue (and its eventfd when the loop
/// is blocked), as in Flash's AMPED design. <see cref="DiskDispatcher"/> decides which loop, and where the awaiting
/// request resumes.
/// </summary>
internal abstract class DiskJob<T> : DiskJob, IValueTaskSource<T>
{
    private static readonly Action<object?> s_complete = static state => ((DiskJob<T>)state!).Complete();

    // SetResult is called on the loop: that is the point of the hand-back. Continuations run there too unless the
    // job was prepared to resume on the thread pool.
    private ManualResetValueTaskSourceCore<T> _core;
    private T? _result;
    private Exception? _error;
    private EpollLoop? _loop;

    /// <summary>Cancelled when the client goes away: a job not yet started is then skipped.</summary>
    public CancellationToken Cancellation { get; private set; }

    /// <summary>The call that may block. Helper thread.</summary>
    protected abstract T Execute();

    /// <summary>
    /// Arms the job for one run, before <see cref="HelperPool.TryPost"/>; the returned task completes on
    /// <paramref name="loop"/>. The awaiter resumes right there, or, with <paramref name="resumeOnThreadPool"/>, is
    /// queued to the thread pool from there (<see cref="DiskDispatcher"/> says which).
    /// </summary>
    internal ValueTask<T> Prepare(EpollLoop loop, bool resumeOnThreadPool, CancellationToken cancellation)
    {
        _loop = loop;
        _core.RunContinuationsAsynchronously = resumeOnThreadPool;
        Cancellation = cancellation;
        _result = default;
        _error = null;
        return new ValueTask<T>(this, _core.Version);
    }

    /// <summary>Runs the call (unless cancelled meanwhile) and posts the completion to the loop. Helper thread.</summary>
    internal override void Run()
    {
        try
        {
            Cancellation.ThrowIfCancellationRequested();
            _result = Execute();
        }
        catch (Exception ex)
        {
            _error = ex;
        }
        _loop!.Schedule(s_complete, this);
    }

    internal override void Abandon()
    {
        _error = new ObjectDisposedException(nameof(HelperPool), "The static files' helpers stopped before this disk call ran.");
        _loop!.Schedule(s_complete, this);
    }

    private void Complete()
    {
        if (_error is { } error)
        {
            _core.SetException(error);
        }
        else
        {
            _core.SetResult(_result!);
        }
    }

    T IValueTaskSource<T>.GetResult(short token)
    {
        try
        {
            return _core.GetResult(token);
        }
        finally
        {
            _core.Reset();
        }
    }

    ValueTaskSourceStatus IValueTaskSource<T>.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource<T>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        => _core.OnCompleted(continuation, state, token, flags);
}
