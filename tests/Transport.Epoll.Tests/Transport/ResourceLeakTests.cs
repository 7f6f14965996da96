using System.Net;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;
using static EpollTransport.Tests.Transport.TransportHarness;

namespace EpollTransport.Tests.Transport;

/// <summary>
/// Counts the process's file descriptors and threads, so it must not run beside other tests: the collection
/// disables parallelization (it then runs alone, after the parallel ones).
/// </summary>
[CollectionDefinition(nameof(ResourceLeakCollection), DisableParallelization = true)]
public sealed class ResourceLeakCollection
{
}

[Collection(nameof(ResourceLeakCollection))]
public class ResourceLeakTests
{
    private const string ReactorThreadPrefix = "epoll-reactor-";
    private readonly ITestOutputHelper _output;

    public ResourceLeakTests(ITestOutputHelper output) => _output = output;

    /// <summary>
    /// Default scheduling sends the echoes from pool threads (write-through, where a flusher may be the one that closes
    /// the fd); inline scheduling sends them all on the reactor.
    /// </summary>
    [Theory]
    [InlineData(1, false)]
    [InlineData(2, false)]
    [InlineData(2, true)]
    public async Task ThousandConnectionsLeaveNoFileDescriptorsOrReactorThreadsBehind(int reactorCount, bool inline)
    {
        // Warm-up: whatever the runtime opens lazily (the sockets' own epoll engine, ...) is open before counting.
        await RunConnectionsAsync(reactorCount, inline, connections: 100, reactorThreadsBefore: null);

        var reactorThreadsBefore = ReactorThreadIds();
        var fdsBefore = OpenFileDescriptors();

        var threads = await RunConnectionsAsync(reactorCount, inline, connections: 1000, reactorThreadsBefore);

        // Every reactor thread of the disposed factory has exited: first the managed join, then the kernel task.
        // Join returns when the runtime marks the thread finished, a few instructions before the kernel task goes
        // away; nothing signals that last step, so it is polled, bounded by the same limit as every other wait.
        foreach (var thread in threads)
        {
            Assert.True(thread.Join(WaitLimit), $"Reactor thread {thread.Name} did not exit.");
        }
        var ourReactorThreadsGone = SpinWait.SpinUntil(() => !ReactorThreadIds().Except(reactorThreadsBefore).Any(), WaitLimit);
        Assert.True(ourReactorThreadsGone,
            $"Threads named {ReactorThreadPrefix}* remain: {string.Join(", ", ReactorThreadIds().Except(reactorThreadsBefore))}.");
        if (reactorThreadsBefore.Count > 0)
        {
            _output.WriteLine($"Reactor threads of other tests were running before this one: {string.Join(", ", reactorThreadsBefore)}.");
        }

        var fdsAfter = OpenFileDescriptors();
        if (fdsAfter.Count != fdsBefore.Count)
        {
            var opened = fdsAfter.Except(fdsBefore).ToArray();
            var closed = fdsBefore.Except(fdsAfter).ToArray();
            Assert.Fail($"Open fds: {fdsBefore.Count} before, {fdsAfter.Count} after. New: [{string.Join(", ", opened)}]; gone: [{string.Join(", ", closed)}].");
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task StartingAndStoppingAHostTwentyTimesLeavesNoFileDescriptorsOrReactorThreads(bool inline)
    {
        // Warm-up, as above: what the runtime and Kestrel open once per process is open before counting.
        await RunHostAsync(inline);
        var reactorThreadsBefore = ReactorThreadIds();
        var fdsBefore = OpenFileDescriptors();

        for (int i = 0; i < 20; i++)
        {
            await RunHostAsync(inline);
        }

        var reactorsGone = SpinWait.SpinUntil(() => !ReactorThreadIds().Except(reactorThreadsBefore).Any(), WaitLimit);
        Assert.True(reactorsGone, $"Reactor threads remain: {string.Join(", ", ReactorThreadIds().Except(reactorThreadsBefore))}.");
        var fdsAfter = OpenFileDescriptors();
        Assert.True(fdsAfter.SetEquals(fdsBefore),
            $"Open fds: {fdsBefore.Count} before, {fdsAfter.Count} after. New: [{string.Join(", ", fdsAfter.Except(fdsBefore))}].");
    }

    [Fact]
    public async Task BindingAndUnbindingASecondEndPointWhileClientsChurnKeepsTheReactorsExactlyAsLongAsNeeded()
    {
        // Listeners take reactor references under the group's lock, connections on the reactor threads without it:
        // 2,000 binds of a second end point race with connections that come and go on the first. Bounded by count,
        // and by time so that a loaded machine keeps the suite short.
        const int Binds = 2000;
        var budget = TimeSpan.FromSeconds(60);
        using var cts = new CancellationTokenSource(WaitLimit * 4);
        var server = await TransportServer.StartEchoAsync(new IPEndPoint(IPAddress.Loopback, 0), Configure(reactorCount: 2, inline: false));
        Thread[] threads;
        int binds = 0;
        int roundTrips = 0;
        try
        {
            threads = await CaptureReactorThreadsAsync(server.Factory);
            using var bindingDone = new CancellationTokenSource();
            var churn = Task.Run(async () =>
            {
                while (!bindingDone.IsCancellationRequested)
                {
                    await Task.WhenAll(Enumerable.Range(0, 4).Select(i =>
                        AssertEchoRoundTripAsync(server.EndPoint, Encoding.ASCII.GetBytes($"churn {i}"), cts.Token)));
                    Interlocked.Add(ref roundTrips, 4);
                }
            });

            var deadline = DateTime.UtcNow + budget;
            for (; binds < Binds && DateTime.UtcNow < deadline && !churn.IsCompleted; binds++)
            {
                var second = await server.Factory.BindAsync(new IPEndPoint(IPAddress.Loopback, 0), cts.Token);
                await second.UnbindAsync(cts.Token);
                await second.DisposeAsync();
            }
            bindingDone.Cancel();
            await churn.WaitAsync(WaitLimit);
            _output.WriteLine($"{binds} binds of the second end point, {Volatile.Read(ref roundTrips)} round trips on the first.");
            Assert.True(binds >= 100, $"Only {binds} binds within {budget}.");

            // The first end point still accepts, on the same reactors.
            await AssertEchoRoundTripAsync(server.EndPoint, "still accepting"u8.ToArray(), cts.Token).WaitAsync(WaitLimit);
            Assert.Equal(threads, await CaptureReactorThreadsAsync(server.Factory));

            // The last listener goes, then its connections: the reactors stop without the factory being disposed.
            await server.Listener.UnbindAsync().AsTask().WaitAsync(WaitLimit);
            await server.AcceptLoop.WaitAsync(WaitLimit);
            await server.HandlersCompleted();
            await server.AllClosed();
            await server.Listener.DisposeAsync().AsTask().WaitAsync(WaitLimit);
            foreach (var thread in threads)
            {
                Assert.True(thread.Join(WaitLimit), $"Reactor thread {thread.Name} is still running after the last listener and connection are gone.");
            }
            Assert.Empty(server.Factory.Reactors.Current);
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    /// <summary>A whole app on the epoll transport: built, started, asked once over HTTP, stopped and disposed.</summary>
    private static async Task RunHostAsync(bool inline)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseEpollTransport(o =>
        {
            o.ReactorCount = 2;
            o.UnsafePreferInlineScheduling = inline;
        });
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        await using var app = builder.Build();
        app.MapGet("/", () => "ok");
        await app.StartAsync().WaitAsync(WaitLimit);
        using (var client = new HttpClient())
        {
            Assert.Equal("ok", await client.GetStringAsync(app.Urls.First()).WaitAsync(WaitLimit));
        }
        await app.StopAsync().WaitAsync(WaitLimit);
    }

    /// <summary>
    /// A fresh factory and echo listener; <paramref name="connections"/> round trips in batches of 50; waits for every
    /// handler and every ConnectionClosed; then disposes listener and factory. With <paramref name="reactorThreadsBefore"/>,
    /// returns the factory's reactor threads.
    /// </summary>
    private static async Task<Thread[]> RunConnectionsAsync(int reactorCount, bool inline, int connections, HashSet<string>? reactorThreadsBefore)
    {
        const int Batch = 50;
        using var cts = new CancellationTokenSource(WaitLimit * 2);
        var threads = Array.Empty<Thread>();
        var server = await TransportServer.StartEchoAsync(new IPEndPoint(IPAddress.Loopback, 0), Configure(reactorCount, inline));
        try
        {
            if (reactorThreadsBefore is not null)
            {
                threads = await CaptureReactorThreadsAsync(server.Factory);
                Assert.Equal(reactorCount, threads.Length);
                Assert.All(threads, t => Assert.StartsWith(ReactorThreadPrefix, t.Name));
                // The kernel sees them by that name too, so their absence later means something.
                Assert.Equal(reactorCount, ReactorThreadIds().Except(reactorThreadsBefore).Count());
            }

            for (int start = 0; start < connections; start += Batch)
            {
                await Task.WhenAll(Enumerable.Range(start, Math.Min(Batch, connections - start)).Select(i =>
                    AssertEchoRoundTripAsync(server.EndPoint, Encoding.ASCII.GetBytes($"connection {i}"), cts.Token)))
                    .WaitAsync(WaitLimit);
            }

            await server.HandlersCompleted();
            await server.AllClosed();
            Assert.Equal(connections, server.Connections.Length);
        }
        finally
        {
            await server.DisposeAsync();
        }

        // Handles that other tests dropped without disposing are finalized now, not during the next count.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return threads;
    }

    /// <summary>Runs an item on every reactor to learn its thread.</summary>
    private static async Task<Thread[]> CaptureReactorThreadsAsync(EpollTransportFactory factory)
    {
        var reactors = factory.Reactors.Current;
        var captures = reactors.Select(reactor =>
        {
            var tcs = new TaskCompletionSource<Thread>(TaskCreationOptions.RunContinuationsAsynchronously);
            reactor.Schedule(static state => ((TaskCompletionSource<Thread>)state!).TrySetResult(Thread.CurrentThread), tcs);
            return tcs.Task;
        });
        return await Task.WhenAll(captures).WaitAsync(WaitLimit);
    }

    /// <summary>
    /// The process's open sockets, epoll instances and eventfds (the kinds of fd the transport opens), as
    /// "fd -> target". Files are left out: the runtime maps assemblies lazily, whenever a test first needs one.
    /// </summary>
    private static HashSet<string> OpenFileDescriptors()
    {
        // Sockets other tests dropped without disposing close on the finalizer thread; let them go first.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var result = new HashSet<string>();
        foreach (var entry in Directory.GetFileSystemEntries("/proc/self/fd"))
        {
            string target;
            try
            {
                target = new FileInfo(entry).LinkTarget ?? "?";
            }
            catch (IOException)
            {
                // The fd of the directory listing itself, closed by now.
                continue;
            }
            if (target.StartsWith("socket:", StringComparison.Ordinal) || target.StartsWith("anon_inode:", StringComparison.Ordinal))
            {
                result.Add($"{Path.GetFileName(entry)} -> {target}");
            }
        }
        return result;
    }

    /// <summary>Thread ids (from /proc/self/task) whose name starts with "epoll-reactor-".</summary>
    private static HashSet<string> ReactorThreadIds()
    {
        var result = new HashSet<string>();
        foreach (var task in Directory.GetDirectories("/proc/self/task"))
        {
            string name;
            try
            {
                name = File.ReadAllText(Path.Combine(task, "comm")).TrimEnd('\n');
            }
            catch (IOException)
            {
                continue; // the thread exited while listing
            }
            if (name.StartsWith(ReactorThreadPrefix, StringComparison.Ordinal))
            {
                result.Add($"{Path.GetFileName(task)} ({name})");
            }
        }
        return result;
    }
}
