using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Xunit.Abstractions;

namespace EpollTransport.Tests.Faults;

/// <summary>
/// A client that asks for a huge response and never reads it: the server must not buffer the response for it. The
/// app's writes must wait once the transport holds <c>MaxWriteBufferSize</c> and the kernel's socket buffers are
/// full, and end when the client goes away.
/// </summary>
public sealed class NeverReadingClientTests(ITestOutputHelper output)
{
    private const long BodySize = 64L * 1024 * 1024;
    private const int Chunk = 64 * 1024;

    // Asked for on the client socket before connecting (the kernel doubles it and keeps a floor): it caps what the
    // client's receive queue holds, so the kernel's part of the bound below is mostly the server's send buffer.
    private const int ClientReceiveBuffer = 16 * 1024;

    // How many round trips on another connection a pending write must stay pending through to count as stalled
    // (each one is a full turn of the reactors and of Kestrel), and how many pending writes may be tried.
    private const int StallProbes = 20;
    private const int MaxPendingWrites = 200;

    public static TheoryData<string> Transports => KestrelHost.Transports;

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task WritesToAClientThatNeverReadsStayBoundedAndEndWhenItGoes(string transport)
    {
        var written = 0L;
        var writesCompleted = 0L;
        var lastPendingWrite = -1L;
        using var writePended = new SemaphoreSlim(0);
        var handlerDone = new TaskCompletionSource<(long Written, Exception? Failure, bool Aborted)>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await FaultServer.StartAsync(transport, app =>
        {
            FaultServer.MapOk(app);
            app.MapGet("/huge", async context =>
            {
                var aborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                using var registration = context.RequestAborted.Register(() => aborted.TrySetResult());
                Exception? failure = null;
                try
                {
                    var chunk = ResetStormTests.Pattern(Chunk);
                    context.Response.ContentLength = BodySize;
                    for (long index = 0; index * Chunk < BodySize && !context.RequestAborted.IsCancellationRequested; index++)
                    {
                        var write = context.Response.BodyWriter.WriteAsync(chunk, context.RequestAborted);
                        if (!write.IsCompleted)
                        {
                            // Write number `index` waits (it is pending while writesCompleted == index).
                            Volatile.Write(ref lastPendingWrite, index);
                            writePended.Release();
                        }
                        await write;
                        Interlocked.Add(ref written, Chunk);
                        Interlocked.Increment(ref writesCompleted);
                    }
                }
                catch (Exception e)
                {
                    failure = e;
                }
                // Once the transport's output is gone Kestrel's writes are no-ops until RequestAborted fires, so the
                // loop may also end by reaching the end of the body: RequestAborted is awaited, not just read.
                var wasAborted = await aborted.Task.WaitAsync(WaitLimit).ContinueWith(t => t.IsCompletedSuccessfully, TaskScheduler.Default);
                handlerDone.TrySetResult((Volatile.Read(ref written), failure, wasAborted));
            });
        }, output, limits =>
        {
            // Kestrel would otherwise cut the client itself after 5 s below 240 bytes/s; here only the client ends it.
            limits.MinResponseDataRate = null;
        });
        using var cts = new CancellationTokenSource(WaitLimit * 2);
        using var healthy = await RawHttpClient.ConnectAsync(server.BaseAddress, cts.Token);

        var client = await RawHttpClient.ConnectAsync(server.BaseAddress, cts.Token, receiveBufferSize: ClientReceiveBuffer);
        long stalledAt;
        try
        {
            var clientReceiveBuffer = client.Socket.ReceiveBufferSize;
            await client.SendAsync("GET /huge HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", cts.Token);

            // Wait for a write that stays pending while the server serves StallProbes requests on another connection.
            var stalled = false;
            for (var attempt = 0; attempt < MaxPendingWrites && !stalled; attempt++)
            {
                await writePended.WaitAsync(cts.Token);
                while (writePended.Wait(0))
                {
                    // Only the latest pending write matters.
                }
                var pending = Volatile.Read(ref lastPendingWrite);
                if (Volatile.Read(ref writesCompleted) != pending)
                {
                    continue;
                }
                for (var probe = 0; probe < StallProbes; probe++)
                {
                    await FaultServer.AssertOkAsync(healthy, $"probe-{attempt}-{probe}", cts.Token);
                }
                stalled = Volatile.Read(ref writesCompleted) == pending;
                Assert.False(handlerDone.Task.IsCompleted, "The app wrote the whole body to a client that reads nothing.");
            }
            Assert.True(stalled, $"No write of the app stayed pending in {MaxPendingWrites} tries.");
            stalledAt = Volatile.Read(ref written);

            // What may be between the app and the client: the transport's MaxWriteBufferSize (its pipe pauses the
            // writer at that many bytes, and the write that crossed it is one chunk), the server socket's send
            // buffer (the kernel grows it at most to tcp_wmem's maximum), the client socket's receive buffer, and
            // the response head. 64 KiB of slack covers the head and the pipe's segment rounding.
            var sendBufferMax = KernelMax("/proc/sys/net/ipv4/tcp_wmem");
            var bound = server.MaxWriteBufferSize + Chunk + sendBufferMax + clientReceiveBuffer + 64 * 1024;
            output.WriteLine($"[{transport}] the app's writes stalled at {stalledAt} bytes; bound {bound} = MaxWriteBufferSize "
                + $"{server.MaxWriteBufferSize} + chunk {Chunk} + tcp_wmem max {sendBufferMax} + client SO_RCVBUF {clientReceiveBuffer} + 65536.");
            Assert.True(stalledAt <= bound, $"The app wrote {stalledAt} bytes to a client that reads nothing; at most {bound} may be buffered.");
        }
        finally
        {
            // The client goes away.
            client.Reset();
        }

        var (finalWritten, failure, aborted) = await handlerDone.Task.WaitAsync(cts.Token);
        output.WriteLine($"[{transport}] the app's request ended after {finalWritten} bytes: aborted {aborted}, {failure?.GetType().Name}");
        Assert.True(aborted, "RequestAborted did not fire when the client went away.");
        Assert.True(failure is null or OperationCanceledException, $"The response write failed with {failure}");
        await FaultServer.AssertOkAsync(healthy, "after", cts.Token);
        Assert.Empty(server.UnexpectedErrors);
    }

    /// <summary>The maximum (third) value of a tcp_wmem / tcp_rmem style file.</summary>
    private static long KernelMax(string path)
        => long.Parse(File.ReadAllText(path).Split((char[])['\t', ' ', '\n'], StringSplitOptions.RemoveEmptyEntries)[2], CultureInfo.InvariantCulture);
}
