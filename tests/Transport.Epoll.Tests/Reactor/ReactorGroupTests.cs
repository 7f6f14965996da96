using EpollTransport.Reactor;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using static EpollTransport.Tests.Transport.TransportHarness;

namespace EpollTransport.Tests.Reactor;

/// <summary>
/// The reference count that keeps a factory's reactors alive: listeners take references under the group's lock,
/// connections take and drop theirs on the reactor threads without it.
/// </summary>
public class ReactorGroupTests
{
    [Fact]
    public async Task AConnectionClosingWhileAListenerTakesItsReferenceIsNotLost()
    {
        var group = new ReactorGroup(new EpollTransportOptions { ReactorCount = 1 },
            HostServices.GetRequiredService<IMemoryPoolFactory<byte>>(), NullLogger.Instance);
        await using var _ = group;
        var reactors = group.Acquire();
        group.AddConnection();

        // A second listener binds; it is held at the moment it takes its reference, and the connection closes then.
        using var parked = new ManualResetEventSlim();
        using var resume = new ManualResetEventSlim();
        group.AcquireObserver = () =>
        {
            parked.Set();
            Assert.True(resume.Wait(WaitLimit), "The test never resumed the bind.");
        };
        var bind = Task.Factory.StartNew(group.Acquire, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        Assert.True(parked.Wait(WaitLimit), "Acquire never reached its reference update.");
        await group.Release().WaitAsync(WaitLimit);
        resume.Set();
        Assert.Same(reactors, await bind.WaitAsync(WaitLimit));
        group.AcquireObserver = null;

        // Both listeners go: that was the last reference, so the reactors stop.
        await group.Release().WaitAsync(WaitLimit);
        await group.Release().WaitAsync(WaitLimit);
        Assert.True(group.Current.Length == 0, "The reactors outlived the last reference: the connection's release was lost.");
        await Task.WhenAll(reactors.Select(r => r.Completion)).WaitAsync(WaitLimit);
    }
}
