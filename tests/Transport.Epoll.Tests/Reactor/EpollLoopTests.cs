using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using static EpollTransport.Tests.Transport.TransportHarness;

namespace EpollTransport.Tests.Reactor;

/// <summary>
/// <see cref="EpollLoop"/>: the public face of a reactor, through which other components hand work to the loop
/// that runs a request, or to a loop of their own.
/// </summary>
public class EpollLoopTests
{
    [Fact]
    public async Task AStartedLoopRunsWorkOnItsOwnThreadAndIsCurrentThere()
    {
        Assert.Null(EpollLoop.Current);
        await using var loop = EpollLoop.Start("test-loop-a");
        Assert.False(loop.IsOnLoopThread);

        var seen = new TaskCompletionSource<(string? Thread, bool IsCurrent, bool OnLoop)>(TaskCreationOptions.RunContinuationsAsynchronously);
        loop.Schedule(_ => seen.SetResult((Thread.CurrentThread.Name, ReferenceEquals(EpollLoop.Current, loop), loop.IsOnLoopThread)), null);

        var (thread, isCurrent, onLoop) = await seen.Task.WaitAsync(WaitLimit);
        Assert.Equal("test-loop-a", thread);
        Assert.True(isCurrent);
        Assert.True(onLoop);
    }

    [Fact]
    public async Task WorkPostedToABlockedLoopWakesItThroughTheEventfd()
    {
        await using var loop = EpollLoop.Start("test-loop-b");
        // Each post waits for the one before to run, so the loop goes back to epoll_wait in between; a post that
        // finds it blocked must write the eventfd, or it would never run.
        using var deadline = new CancellationTokenSource(WaitLimit);
        while (loop.WakeUps == 0)
        {
            var ran = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            loop.Schedule(static state => ((TaskCompletionSource)state!).SetResult(), ran);
            await ran.Task.WaitAsync(deadline.Token);
        }
        Assert.True(loop.WakeUps > 0);
    }

    [Fact]
    public async Task DisposeStopsAStartedLoopAfterTheWorkAlreadyPosted()
    {
        var loop = EpollLoop.Start("test-loop-c");
        var ran = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        loop.Schedule(static state => ((TaskCompletionSource)state!).SetResult(), ran);
        await loop.DisposeAsync().AsTask().WaitAsync(WaitLimit);

        Assert.True(ran.Task.IsCompleted);
        Assert.True(SpinWait.SpinUntil(() => !ReactorWakeupTests.ThreadNames().Contains("test-loop-c"), WaitLimit));
    }

    [Theory]
    [InlineData(KestrelHost.EpollInline, true)]
    [InlineData(KestrelHost.Epoll, false)]
    [InlineData(KestrelHost.Sockets, false)]
    public async Task AnApplicationRunningInlineSeesItsReactorAsTheCurrentLoop(string transport, bool expected)
    {
        await using var host = await KestrelHost.StartAsync(transport, app =>
            app.MapGet("/loop", () => EpollLoop.Current is { IsOnLoopThread: true } ? "loop" : "none"));
        using var client = new HttpClient { BaseAddress = host.BaseAddress };

        // The first request of a connection starts on the thread pool (Kestrel's choice); the second runs where the
        // transport completes its read.
        await client.GetStringAsync("loop");
        Assert.Equal(expected ? "loop" : "none", await client.GetStringAsync("loop"));
    }

    [Fact]
    public async Task TheLoopOfATransportIsNotStoppedByItsUsers()
    {
        EpollLoop? seen = null;
        await using var host = await KestrelHost.StartAsync(KestrelHost.EpollInline, app =>
            app.MapGet("/loop", async (HttpContext _) =>
            {
                seen = EpollLoop.Current;
                if (seen is not null)
                {
                    await seen.DisposeAsync();
                }
                return "ok";
            }));
        using var client = new HttpClient { BaseAddress = host.BaseAddress };
        await client.GetStringAsync("loop");
        await client.GetStringAsync("loop");

        Assert.NotNull(seen);
        Assert.Equal("ok", await client.GetStringAsync("loop"));
    }
}
