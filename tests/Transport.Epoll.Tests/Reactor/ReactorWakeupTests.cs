using EpollTransport.Reactor;

namespace EpollTransport.Tests.Reactor;

public class ReactorWakeupTests
{

    [Fact]
    public async Task PingPongFromAnotherThreadNeverLosesAWakeup()
    {
        // Each post lands while the loop is blocking or about to block: the window the state word must close.
        var reactor = StartReactor();
        try
        {
            for (int i = 0; i < 20_000; i++)
            {
                var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                reactor.Schedule(static s => ((TaskCompletionSource)s!).SetResult(), done);
                await done.Task.WaitAsync(LongWaitLimit);
            }
            Assert.True(reactor.Counters.WakeUps > 0, "The loop never blocked, so no wake-up was exercised.");
        }
        finally
        {
            reactor.Stop();
            await reactor.Completion.WaitAsync(LongWaitLimit);
        }
    }

    [Fact]
    public async Task ManyProducersInBurstsNeverLoseAWorkItem()
    {
        const int Producers = 8;
        const int Bursts = 200;
        const int PerBurst = 50;
        var reactor = StartReactor();
        long executed = 0;
        try
        {
            var producers = Enumerable.Range(0, Producers).Select(p => Task.Run(async () =>
            {
                for (int b = 0; b < Bursts; b++)
                {
                    // The last item of a burst signals; waiting for it lets the loop drain and block again.
                    var burstDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    for (int i = 0; i < PerBurst; i++)
                    {
                        var last = i == PerBurst - 1;
                        reactor.Schedule(_ =>
                        {
                            Interlocked.Increment(ref executed);
                            if (last)
                            {
                                burstDone.SetResult();
                            }
                        }, null);
                    }
                    await burstDone.Task.WaitAsync(LongWaitLimit);
                }
            })).ToArray();

            await Task.WhenAll(producers).WaitAsync(LongWaitLimit);
            Assert.Equal((long)Producers * Bursts * PerBurst, Interlocked.Read(ref executed));
            Assert.True(reactor.Counters.WakeUps > 0);
            Assert.True(reactor.Wakeup.Avoided > 0, "Posts to an awake loop should not write the eventfd.");
        }
        finally
        {
            reactor.Stop();
            await reactor.Completion.WaitAsync(LongWaitLimit);
        }
    }

    [Fact]
    public async Task WorkPostedByTheLoopToItselfRunsWithoutAWakeup()
    {
        var reactor = StartReactor();
        try
        {
            var done = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
            int hops = 0;
            void Hop(object? _)
            {
                if (++hops == 1000)
                {
                    done.SetResult(hops);
                    return;
                }
                reactor.Schedule(Hop, null);
            }
            reactor.Schedule(Hop, null);
            Assert.Equal(1000, await done.Task.WaitAsync(LongWaitLimit));
        }
        finally
        {
            reactor.Stop();
            await reactor.Completion.WaitAsync(LongWaitLimit);
        }
    }

    [Fact]
    public async Task ReactorThreadIsNamedAndExitsOnStop()
    {
        var reactor = StartReactor(id: 7);
        var name = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
        reactor.Schedule(_ => name.SetResult(Thread.CurrentThread.Name), null);
        Assert.Equal("epoll-reactor-7", await name.Task.WaitAsync(LongWaitLimit));

        reactor.Stop();
        await reactor.Completion.WaitAsync(LongWaitLimit);
        // Completion is set as the loop returns; the kernel reaps the thread a moment later (bounded poll).
        Assert.True(SpinWait.SpinUntil(() => !ThreadNames().Contains("epoll-reactor-7"), LongWaitLimit));
    }

    internal static IEnumerable<string> ThreadNames()
        => Directory.GetDirectories("/proc/self/task")
            .Select(task =>
            {
                try
                {
                    return File.ReadAllText(Path.Combine(task, "comm")).Trim();
                }
                catch (IOException)
                {
                    return "";
                }
            });

    private static EpollReactor StartReactor(int id = 0) => TestReactor.Start(id);
}
