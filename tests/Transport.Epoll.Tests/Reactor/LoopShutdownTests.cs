using System.Net;
using System.Net.Sockets;
using Xunit.Abstractions;
using static EpollTransport.Tests.Transport.TransportHarness;

namespace EpollTransport.Tests.Reactor;

/// <summary>
/// What happens to work posted as a loop stops: every item runs once or is refused, and no wake-up write can reach
/// an fd that took the number of the closed eventfd.
/// </summary>
public class LoopShutdownTests
{
    private readonly ITestOutputHelper _output;

    public LoopShutdownTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public async Task AWakeupDecidedBeforeTheLoopStoppedNeverReachesTheSocketThatTookTheEventfdNumber()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();

        var reactor = TestReactor.Start(0);
        var eventFd = reactor.Wakeup.EventFd;
        // A timer due at once, armed again every turn, keeps the loop passing through "about to block" without
        // blocking: a post can find it there, and the loop still sees the stop that the test posts next.
        var turning = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void Turn(object? _)
        {
            turning.TrySetResult();
            reactor.RunAfter(TimeSpan.Zero, Turn, null);
        }
        reactor.Schedule(Turn, null);
        await turning.Task.WaitAsync(WaitLimit);

        // A producer that has decided to write the eventfd is held just before the write.
        using var parked = new ManualResetEventSlim();
        using var resume = new ManualResetEventSlim();
        reactor.Wakeup.WriteObserver = () =>
        {
            reactor.Wakeup.WriteObserver = null;
            parked.Set();
            resume.Wait(WaitLimit);
        };
        // One post at a time, each waiting for the one before to run: a flood would keep the queue non-empty, and a
        // loop with work queued never gets ready to block.
        using var ran = new ManualResetEventSlim();
        var producer = new Thread(() =>
        {
            for (int i = 0; i < 100_000 && !parked.IsSet; i++)
            {
                ran.Reset();
                reactor.Schedule(static state => ((ManualResetEventSlim)state!).Set(), ran);
                if (!parked.IsSet && !ran.Wait(WaitLimit))
                {
                    return;
                }
            }
        });
        producer.Start();
        Assert.True(parked.Wait(WaitLimit), "No post found the loop about to block.");

        // The loop stops now. Either it closes the eventfd under the held producer, or it waits for it to leave.
        var loopWaits = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        reactor.Wakeup.CloseObserver = loopWaits.SetResult;
        reactor.Stop();
        if (await Task.WhenAny(reactor.Completion, loopWaits.Task).WaitAsync(WaitLimit) == loopWaits.Task)
        {
            Assert.False(reactor.Completion.IsCompleted, "The loop exited while it waited for the producer.");
            resume.Set();
            await reactor.Completion.WaitAsync(WaitLimit);
        }

        // The kernel hands out the lowest free number: open sockets until one takes the eventfd's.
        var sockets = new List<Socket>();
        try
        {
            Socket? taker = null;
            for (int i = 0; i < 1024 && taker is null; i++)
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                sockets.Add(socket);
                if ((int)socket.Handle == eventFd)
                {
                    taker = socket;
                }
            }
            Assert.True(taker is not null, $"None of {sockets.Count} new sockets took fd {eventFd}.");
            await taker.ConnectAsync(listener.LocalEndPoint!).WaitAsync(WaitLimit);
            using var peer = await listener.AcceptAsync().WaitAsync(WaitLimit);

            resume.Set();
            Assert.True(producer.Join(WaitLimit), "The producer did not finish.");
            // Whatever the producer wrote is on the wire before this marker.
            await taker.SendAsync(new byte[] { 0xEE }).WaitAsync(WaitLimit);
            var received = new byte[64];
            var n = await peer.ReceiveAsync(received).WaitAsync(WaitLimit);
            Assert.True(n == 1 && received[0] == 0xEE,
                $"The socket that took fd {eventFd} carried {Convert.ToHexString(received, 0, n)} (the marker is EE).");
        }
        finally
        {
            resume.Set();
            foreach (var socket in sockets)
            {
                socket.Dispose();
            }
        }
    }

    [Fact]
    public async Task TryScheduleOnAStoppedLoopRefuses()
    {
        var loop = EpollLoop.Start("test-loop-e");
        await loop.DisposeAsync().AsTask().WaitAsync(WaitLimit);

        int runs = 0;
        Assert.False(loop.TrySchedule(_ => Interlocked.Increment(ref runs), null), "TrySchedule accepted work for a stopped loop.");
        Assert.Equal(0, Volatile.Read(ref runs));
    }

    [Fact]
    public async Task ScheduleOnAStoppedLoopStillRunsTheItemOnce()
    {
        var loop = EpollLoop.Start("test-loop-f");
        await loop.DisposeAsync().AsTask().WaitAsync(WaitLimit);

        int runs = 0;
        var ran = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        loop.Schedule(_ =>
        {
            Interlocked.Increment(ref runs);
            ran.TrySetResult(loop.IsOnLoopThread);
        }, null);
        Assert.False(await ran.Task.WaitAsync(WaitLimit), "A stopped loop has no thread to run on.");
        // Posted after the first ran, behind it: when it has run, the first could have run twice already.
        var second = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        loop.Schedule(static state => ((TaskCompletionSource)state!).SetResult(), second);
        await second.Task.WaitAsync(WaitLimit);
        Assert.Equal(1, Volatile.Read(ref runs));
    }

    [Fact]
    public async Task WorkPostedFromManyThreadsWhileTheLoopStopsRunsOnceOrIsRefused()
    {
        // Rounds of producers posting flat out while the loop is disposed under them. Bounded by count.
        const int Rounds = 20;
        const int Producers = 4;
        const int PostsPerProducer = 20_000;
        long refusedTotal = 0;
        long afterStopTotal = 0;
        for (int round = 0; round < Rounds; round++)
        {
            var loop = EpollLoop.Start("test-loop-g");
            // Even posts use TrySchedule (accepted: runs once on the loop; refused: never runs); odd posts use
            // Schedule (runs once, on the loop or after it stopped).
            var runs = new int[Producers * PostsPerProducer];
            var offLoop = new int[runs.Length];
            var accepted = new bool[runs.Length];
            int mustRun = -1;
            int ranCount = 0;
            var allRan = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var posting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            int producersLeft = Producers;

            void Ran(int id)
            {
                Interlocked.Increment(ref runs[id]);
                if (!loop.IsOnLoopThread)
                {
                    Interlocked.Increment(ref offLoop[id]);
                }
                posting.TrySetResult();
                if (Interlocked.Increment(ref ranCount) == Volatile.Read(ref mustRun))
                {
                    allRan.TrySetResult();
                }
            }

            var threads = Enumerable.Range(0, Producers).Select(p => new Thread(() =>
            {
                for (int i = 0; i < PostsPerProducer; i++)
                {
                    int id = p * PostsPerProducer + i;
                    if (id % 2 == 0)
                    {
                        accepted[id] = loop.TrySchedule(static state => ((Action)state!)(), (Action)(() => Ran(id)));
                    }
                    else
                    {
                        accepted[id] = true;
                        loop.Schedule(static state => ((Action)state!)(), (Action)(() => Ran(id)));
                    }
                }
                if (Interlocked.Decrement(ref producersLeft) == 0)
                {
                    var count = accepted.Count(a => a);
                    Interlocked.Exchange(ref mustRun, count);
                    if (Volatile.Read(ref ranCount) == count)
                    {
                        allRan.TrySetResult();
                    }
                }
            })).ToArray();
            foreach (var thread in threads)
            {
                thread.Start();
            }

            await posting.Task.WaitAsync(WaitLimit);
            await loop.DisposeAsync().AsTask().WaitAsync(WaitLimit);
            Assert.All(threads, thread => Assert.True(thread.Join(WaitLimit), "A producer did not finish."));
            // Items handed over after the stop may still be running.
            try
            {
                await allRan.Task.WaitAsync(WaitLimit);
            }
            catch (TimeoutException)
            {
                Assert.Fail($"Round {round}: of {Volatile.Read(ref mustRun)} accepted items {Volatile.Read(ref ranCount)} ran.");
            }

            var lost = Enumerable.Range(0, runs.Length).Where(id => accepted[id] && runs[id] == 0).ToArray();
            var twice = Enumerable.Range(0, runs.Length).Where(id => runs[id] > 1).ToArray();
            var refusedButRan = Enumerable.Range(0, runs.Length).Where(id => !accepted[id] && runs[id] != 0).ToArray();
            var acceptedOffLoop = Enumerable.Range(0, runs.Length).Where(id => id % 2 == 0 && accepted[id] && offLoop[id] != 0).ToArray();
            Assert.True(lost.Length == 0 && twice.Length == 0 && refusedButRan.Length == 0 && acceptedOffLoop.Length == 0,
                $"Round {round}: {lost.Length} accepted item(s) never ran, {twice.Length} ran more than once, " +
                $"{refusedButRan.Length} refused item(s) ran, {acceptedOffLoop.Length} TrySchedule item(s) ran off the loop " +
                $"({mustRun} accepted of {runs.Length}).");
            refusedTotal += runs.Length - mustRun;
            afterStopTotal += offLoop.Count(n => n != 0);
        }
        _output.WriteLine($"{Rounds} rounds: {refusedTotal} posts refused, {afterStopTotal} run after the stop.");
        // Otherwise every round stopped after its producers were done, and the race was never run. Posts made while
        // the loop drains its queue at shutdown still run on the loop, and producers posting flat out can keep that
        // drain going until they are done: then none runs after the stop, which ScheduleOnAStoppedLoopStillRunsTheItemOnce
        // covers on its own.
        Assert.True(refusedTotal > 0, $"{refusedTotal} posts refused, {afterStopTotal} run after the stop.");
    }
}
