namespace EpollTransport.Testing;

/// <summary>
/// How long a test awaits one event (a response, a callback, a connection's close, a thread's exit) before it fails.
/// The bounds only end a test that would otherwise hang: a passing test never waits them out, so they are generous
/// enough for a machine loaded by the tests that run beside it, and no test asserts on how long anything took.
/// </summary>
public static class TestTimeouts
{
    /// <summary>The bound on one awaited event.</summary>
    public static readonly TimeSpan WaitLimit = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The bound where one wait spans a child process's start or exit, a host's shutdown, or tens of megabytes
    /// through one connection: steps that take seconds on a loaded machine.
    /// </summary>
    public static readonly TimeSpan LongWaitLimit = TimeSpan.FromSeconds(60);
}
