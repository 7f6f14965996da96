namespace EpollTransport.Reactor;

/// <summary>
/// Optional hooks on the reactor's rare paths, for tests that must await a kernel condition (a write that hit
/// EAGAIN, a read paused by backpressure) instead of sleeping. Called on the reactor thread unless said otherwise;
/// never set in production, where the check costs one null test on a cold path (or, for
/// <see cref="BeforeWriteThrough"/>, next to a system call).
/// </summary>
internal interface IReactorObserver
{
    void OnBudgetExhausted(IEpollHandler handler);

    void OnReadPaused(IEpollHandler handler);

    void OnWriteWouldBlock(IEpollHandler handler);

    /// <summary>
    /// Before <paramref name="fd"/> joins the epoll set: true makes the registration fail as the kernel can (ENOSPC
    /// past <c>max_user_watches</c>, ENOMEM), so a test can reach the paths that handle it.
    /// </summary>
    bool RefusesRegistration(IEpollHandler handler, int fd);

    /// <summary>
    /// On a flushing thread that owns the connection's write side, just before its write-through sendmsg: a test can
    /// park the thread here to hold the fd while the connection closes. Not on the reactor thread.
    /// </summary>
    void BeforeWriteThrough(IEpollHandler handler)
    {
    }
}
