using System.Collections.Concurrent;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Xunit.Abstractions;

namespace EpollTransport.Tests.Faults;

/// <summary>
/// Clients that go away in the middle of an upload or a download, by RST or by FIN: the app learns it (its body read
/// fails, RequestAborted fires), no exception goes unobserved, and the server keeps serving the others.
/// </summary>
public sealed class VanishingClientTests(ITestOutputHelper output)
{
    private const int Clients = 8;
    private const int UploadSize = 8 * 1024 * 1024;
    private const int DownloadSize = 64 * 1024 * 1024;
    private const int Chunk = 64 * 1024;

    public static TheoryData<string> Transports => KestrelHost.Transports;

    /// <summary>What the app saw of one request: bytes moved, the exception that ended it, whether it was aborted.</summary>
    private sealed record Outcome(long Bytes, Exception? Failure, bool Aborted);

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task ClientsVanishingMidUploadFailTheBodyReadAndAbortTheRequest(string transport)
    {
        using var unobserved = new UnobservedExceptions();
        var outcomes = new ConcurrentDictionary<int, TaskCompletionSource<Outcome>>();
        var readEverythingSent = new PortSignals();
        await using var server = await FaultServer.StartAsync(transport, app =>
        {
            FaultServer.MapOk(app);
            app.MapPost("/upload", async context =>
            {
                var port = context.Connection.RemotePort;
                var aborted = AbortedSignal(context);
                var sent = long.Parse(context.Request.Headers["X-Sent"].ToString(), System.Globalization.CultureInfo.InvariantCulture);
                long read = 0;
                Exception? failure = null;
                try
                {
                    var buffer = new byte[Chunk];
                    int n;
                    // Without RequestAborted: the body read itself must fail when the client goes.
                    while ((n = await context.Request.Body.ReadAsync(buffer)) > 0)
                    {
                        read += n;
                        if (read >= sent)
                        {
                            readEverythingSent.Signal(port);
                        }
                    }
                }
                catch (Exception e)
                {
                    failure = e;
                }
                Outcomes(outcomes, port).TrySetResult(new Outcome(read, failure, await WasAbortedAsync(aborted)));
            });
        }, output);
        using var cts = new CancellationTokenSource(WaitLimit * 2);
        using var healthy = await RawHttpClient.ConnectAsync(server.BaseAddress, cts.Token);

        async Task<(Outcome Outcome, bool Reset)> UploadAndVanishAsync(int index)
        {
            var reset = index % 2 == 0;
            using var client = await RawHttpClient.ConnectAsync(server.BaseAddress, cts.Token);
            var outcome = Outcomes(outcomes, client.LocalPort).Task;
            var sent = 256 * 1024 + index * 4099;
            var readByServer = readEverythingSent.WaitAsync(client.LocalPort);
            await client.SendAsync($"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {UploadSize}\r\nX-Sent: {sent}\r\n\r\n", cts.Token);
            await client.SendAsync(new byte[sent], cts.Token);
            if (reset)
            {
                // RST once the app has read all that was sent (see ResetStormTests for why not earlier).
                await readByServer.WaitAsync(cts.Token);
                client.Reset();
            }
            else
            {
                // FIN while the server may still be reading what was sent.
                client.Socket.Shutdown(SocketShutdown.Both);
                client.Dispose();
            }
            return (await outcome.WaitAsync(cts.Token), reset);
        }

        var vanishing = Task.WhenAll(Enumerable.Range(0, Clients).Select(UploadAndVanishAsync));
        // Meanwhile, and afterwards, another client is served.
        for (var i = 0; i < 1000 && !vanishing.IsCompleted; i++)
        {
            await FaultServer.AssertOkAsync(healthy, $"during-{i}", cts.Token);
        }
        foreach (var (outcome, reset) in await vanishing.WaitAsync(cts.Token))
        {
            output.WriteLine($"[{transport}] {(reset ? "RST" : "FIN")}: read {outcome.Bytes}, aborted {outcome.Aborted}, {outcome.Failure?.GetType().FullName}: {outcome.Failure?.Message}");
            Assert.True(outcome.Bytes < UploadSize, $"The app read {outcome.Bytes} bytes of a body that was cut short.");
            // The read fails with an I/O error (ConnectionResetException; for a FIN, Kestrel's bad request).
            Assert.IsAssignableFrom<IOException>(outcome.Failure);
            Assert.True(outcome.Aborted, "RequestAborted did not fire.");
        }
        await FaultServer.AssertOkAsync(healthy, "after", cts.Token);
        Assert.Empty(server.UnexpectedErrors);
        unobserved.AssertNone();
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task ClientsVanishingMidDownloadAbortTheRequest(string transport)
    {
        using var unobserved = new UnobservedExceptions();
        var outcomes = new ConcurrentDictionary<int, TaskCompletionSource<Outcome>>();
        await using var server = await FaultServer.StartAsync(transport, app =>
        {
            FaultServer.MapOk(app);
            app.MapGet("/download", async context =>
            {
                var port = context.Connection.RemotePort;
                var aborted = AbortedSignal(context);
                long written = 0;
                Exception? failure = null;
                try
                {
                    var chunk = ResetStormTests.Pattern(Chunk);
                    context.Response.ContentLength = DownloadSize;
                    while (written < DownloadSize && !context.RequestAborted.IsCancellationRequested)
                    {
                        await context.Response.Body.WriteAsync(chunk, context.RequestAborted);
                        written += chunk.Length;
                    }
                }
                catch (Exception e)
                {
                    failure = e;
                }
                Outcomes(outcomes, port).TrySetResult(new Outcome(written, failure, await WasAbortedAsync(aborted)));
            });
        }, output);
        using var cts = new CancellationTokenSource(WaitLimit * 2);
        using var healthy = await RawHttpClient.ConnectAsync(server.BaseAddress, cts.Token);

        async Task<(Outcome Outcome, bool Reset)> DownloadAndVanishAsync(int index)
        {
            var reset = index % 2 == 0;
            using var client = await RawHttpClient.ConnectAsync(server.BaseAddress, cts.Token);
            var outcome = Outcomes(outcomes, client.LocalPort).Task;
            await client.SendAsync("GET /download HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", cts.Token);
            Assert.Equal(200, (await client.ReadHeadAsync(cts.Token)).StatusCode);
            await client.DiscardAsync(1024 * 1024 + index * 4099, cts.Token);
            if (reset)
            {
                client.Reset();
            }
            else
            {
                // FIN, then never read again (a close with unread bytes would be a reset).
                client.Socket.Shutdown(SocketShutdown.Send);
            }
            return (await outcome.WaitAsync(cts.Token), reset);
        }

        var vanishing = Task.WhenAll(Enumerable.Range(0, Clients).Select(DownloadAndVanishAsync));
        for (var i = 0; i < 1000 && !vanishing.IsCompleted; i++)
        {
            await FaultServer.AssertOkAsync(healthy, $"during-{i}", cts.Token);
        }
        foreach (var (outcome, reset) in await vanishing.WaitAsync(cts.Token))
        {
            output.WriteLine($"[{transport}] {(reset ? "RST" : "FIN")}: wrote {outcome.Bytes}, aborted {outcome.Aborted}, {outcome.Failure?.GetType().FullName}: {outcome.Failure?.Message}");
            // Not asserted on: how much the app wrote. Once the transport's output is gone Kestrel turns writes into
            // no-ops until RequestAborted fires, and a loop of no-op writes may well reach the end of the body first
            // (it does on Sockets too). What the app must learn is the abort.
            Assert.True(outcome.Aborted, "RequestAborted did not fire.");
            // Kestrel's contract with a transport: a client that goes away aborts the request; the writes do not
            // throw I/O errors at the app (one with RequestAborted as its token may be cancelled).
            Assert.True(outcome.Failure is null or OperationCanceledException, $"The response write failed with {outcome.Failure}");
        }
        await FaultServer.AssertOkAsync(healthy, "after", cts.Token);
        Assert.Empty(server.UnexpectedErrors);
        unobserved.AssertNone();
    }

    private static TaskCompletionSource<Outcome> Outcomes(ConcurrentDictionary<int, TaskCompletionSource<Outcome>> outcomes, int port)
        => outcomes.GetOrAdd(port, static _ => new TaskCompletionSource<Outcome>(TaskCreationOptions.RunContinuationsAsynchronously));

    private static Task AbortedSignal(HttpContext context)
    {
        var aborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        context.RequestAborted.Register(static state => ((TaskCompletionSource)state!).TrySetResult(), aborted);
        return aborted.Task;
    }

    /// <summary>Whether RequestAborted fired, or fires within the fault tests' timeout (it may lag the failed I/O).</summary>
    private static async Task<bool> WasAbortedAsync(Task aborted)
    {
        try
        {
            await aborted.WaitAsync(WaitLimit);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }
}

/// <summary>Collects <see cref="TaskScheduler.UnobservedTaskException"/> while it lives.</summary>
internal sealed class UnobservedExceptions : IDisposable
{
    private readonly ConcurrentQueue<Exception> _exceptions = new();

    public UnobservedExceptions()
    {
        // Tasks that earlier tests dropped are finalized now, not during this one.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        TaskScheduler.UnobservedTaskException += OnUnobserved;
    }

    /// <summary>Finalizes what this test dropped, then fails if any of it held an exception nobody observed.</summary>
    public void AssertNone()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        Assert.Empty(_exceptions);
    }

    public void Dispose() => TaskScheduler.UnobservedTaskException -= OnUnobserved;

    private void OnUnobserved(object? sender, UnobservedTaskExceptionEventArgs e) => _exceptions.Enqueue(e.Exception);
}
