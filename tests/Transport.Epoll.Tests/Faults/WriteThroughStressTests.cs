using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using EpollTransport.Tests.Protocols;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Xunit.Abstractions;

namespace EpollTransport.Tests.Faults;

/// <summary>
/// Runs alone: the stress tests count unobserved task exceptions, which any test's garbage can raise, and want both
/// cores for their bounded load.
/// </summary>
[CollectionDefinition(nameof(WriteThroughStressCollection), DisableParallelization = true)]
public sealed class WriteThroughStressCollection
{
}

/// <summary>
/// Many flushing threads per protocol while clients reset connections and streams and the server aborts requests
/// mid-send: the net for races between write-through sends, hand-offs to the reactor and closes that no targeted test
/// pins. It catches what such a race does when it happens under load: a body with a lost, repeated or foreign byte
/// (every completed body is compared byte for byte), a send that stalls (every wait is bounded), a failure that surfaces
/// as an unobserved task exception or an error in the server's log, and a server that stops serving. Narrow windows
/// are not certain to be hit in a few seconds; the fd-reuse one is pinned by <c>WriteThroughTests</c>' canary.
/// </summary>
[Collection(nameof(WriteThroughStressCollection))]
public sealed class WriteThroughStressTests(ITestOutputHelper output)
{
    /// <summary>Bounds each test's load: whichever comes first, this time or the request counts below.</summary>
    private static readonly TimeSpan s_loadTime = TimeSpan.FromSeconds(3);

    private const int MaxLength = 256 * 1024;

    /// <summary>Every response body is a slice of this, so the client knows what each byte must be.</summary>
    private static readonly byte[] s_pattern = CreatePattern();

    public static TheoryData<string, string> ProtocolsAndTransports
    {
        get
        {
            var cases = new TheoryData<string, string>();
            foreach (var protocol in new[] { "http1-pipelined", "h2c", "https-http1", "https-h2" })
            {
                foreach (var transport in new[] { KestrelHost.Epoll, KestrelHost.EpollInline, KestrelHost.EpollReactorSends, KestrelHost.EpollWriteThrough })
                {
                    cases.Add(protocol, transport);
                }
            }
            return cases;
        }
    }

    [Theory]
    [MemberData(nameof(ProtocolsAndTransports))]
    public async Task EveryCompletedBodyIsExactWhileClientsResetAndTheServerAbortsMidSend(string protocol, string transport)
    {
        var tls = protocol.StartsWith("https", StringComparison.Ordinal);
        // Garbage of earlier tests is collected before counting.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var unobserved = new List<Exception>();
        EventHandler<UnobservedTaskExceptionEventArgs> onUnobserved = (_, e) =>
        {
            lock (unobserved)
            {
                unobserved.Add(e.Exception);
            }
        };
        TaskScheduler.UnobservedTaskException += onUnobserved;
        try
        {
            await using (var host = await KestrelHost.StartAsync(transport, MapBody, output, endpoint =>
            {
                endpoint.Protocols = protocol switch
                {
                    "h2c" => HttpProtocols.Http2,
                    "http1-pipelined" => HttpProtocols.Http1,
                    _ => HttpProtocols.Http1AndHttp2,
                };
                if (tls)
                {
                    endpoint.UseHttps(TestCertificate.Server);
                }
            }))
            {
                var tally = new Tally();
                var deadline = DateTime.UtcNow + s_loadTime;
                if (protocol == "http1-pipelined")
                {
                    await Task.WhenAll(Enumerable.Range(0, 16).Select(worker => Task.Run(() =>
                        RunPipelinedConnectionAsync(host.BaseAddress, worker, deadline, maxBatches: 200, tally))))
                        .WaitAsync(LongWaitLimit);
                }
                else
                {
                    var version = protocol == "https-http1" ? HttpVersion.Version11 : HttpVersion.Version20;
                    // HTTP/2: two connections of 100 concurrent streams each (Kestrel's default stream limit).
                    // HTTP/1.1: 32 connections at most, one request on each at a time.
                    var (clients, workersPerClient) = version == HttpVersion.Version20 ? (2, 100) : (1, 32);
                    var handlers = Enumerable.Range(0, clients).Select(_ => CreateHandler()).ToArray();
                    try
                    {
                        await Task.WhenAll(handlers.SelectMany((handler, c) => Enumerable.Range(0, workersPerClient).Select(w =>
                            Task.Run(() => RunHttpClientWorkerAsync(handler, host.BaseAddress, version, c * workersPerClient + w, deadline,
                                maxRequests: 40, tally)))))
                            .WaitAsync(LongWaitLimit);
                    }
                    finally
                    {
                        foreach (var handler in handlers)
                        {
                            handler.Dispose();
                        }
                    }
                }
                output.WriteLine($"{protocol} on {transport}: {tally}");
                Assert.True(tally.Completed > 0, $"No body completed: {tally}.");
                Assert.True(tally.ServerAborts > 0, $"No request was aborted by the server: {tally}.");
                Assert.True(tally.ClientResets > 0, $"No client reset: {tally}.");

                // The server serves fresh requests afterwards, on a fresh connection.
                using (var handler = CreateHandler())
                {
                    var version = protocol == "https-http1" || protocol == "http1-pipelined" ? HttpVersion.Version11 : HttpVersion.Version20;
                    var fresh = new Tally();
                    for (int i = 0; i < 5; i++)
                    {
                        await RequestAsync(handler, host.BaseAddress, version, new Plan(i * 7919, MaxLength - i, i, ServerAborts: false, ClientResets: false), fresh);
                    }
                    Assert.Equal(5, fresh.Completed);
                }
                Assert.Empty(host.LoggedErrors);
            }

            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
        }
        finally
        {
            TaskScheduler.UnobservedTaskException -= onUnobserved;
        }
        lock (unobserved)
        {
            Assert.True(unobserved.Count == 0, $"Unobserved task exceptions:{Environment.NewLine}{string.Join(Environment.NewLine, unobserved)}");
        }
    }

    /// <summary>One response: the slice of <see cref="s_pattern"/> at <paramref name="Offset"/>, written in pieces.</summary>
    private sealed record Plan(int Offset, int Length, int PieceSeed, bool ServerAborts, bool ClientResets)
    {
        public string Path => $"/body/{Offset}/{Length}/{PieceSeed}/{(ServerAborts ? 1 : 0)}";

        /// <summary>Mostly plain requests; about one in 16 aborted by the server, one in 16 reset by the client.</summary>
        public static Plan Next(Random random, bool forceAbort = false, bool forceReset = false)
        {
            var length = random.Next(5) switch
            {
                0 => random.Next(0, 1024),
                1 or 2 => random.Next(1024, 64 * 1024),
                _ => random.Next(64 * 1024, MaxLength + 1),
            };
            var kind = random.Next(16);
            var aborts = forceAbort || kind == 0;
            return new Plan(random.Next(0, MaxLength), length, random.Next(), aborts && length > 0,
                !aborts && (forceReset || kind == 1) && length > 1);
        }
    }

    private sealed class Tally
    {
        public int Completed;
        public int ServerAborts;
        public int ClientResets;

        public override string ToString()
            => $"{Volatile.Read(ref Completed)} bodies completed, {Volatile.Read(ref ServerAborts)} aborted by the server, {Volatile.Read(ref ClientResets)} reset by the client";
    }

    /// <summary>
    /// The body endpoint: Content-Length, then the slice in pieces of up to 64 KiB, each flushed (many concurrent
    /// flushers across connections and streams); with abort, <see cref="HttpContext.Abort"/> halfway.
    /// </summary>
    private static void MapBody(WebApplication app)
        => app.MapGet("/body/{offset:int}/{length:int}/{pieceSeed:int}/{abort:int}", async context =>
        {
            var offset = RouteInt(context, "offset");
            var length = RouteInt(context, "length");
            var pieces = new Random(RouteInt(context, "pieceSeed"));
            var abortAt = RouteInt(context, "abort") == 1 ? length / 2 : -1;
            context.Response.ContentLength = length;
            try
            {
                for (int written = 0; written < length;)
                {
                    if (written == abortAt)
                    {
                        context.Abort();
                        return;
                    }
                    var size = Math.Min(length - written, pieces.Next(1, 64 * 1024));
                    if (written < abortAt)
                    {
                        size = Math.Min(size, abortAt - written);
                    }
                    await context.Response.BodyWriter.WriteAsync(s_pattern.AsMemory(offset + written, size), context.RequestAborted);
                    written += size;
                }
            }
            catch (Exception) when (context.RequestAborted.IsCancellationRequested)
            {
                // The client reset the connection or the stream mid-body.
            }
        });

    /// <summary>
    /// One raw connection at a time: batches of up to 8 pipelined GETs in one write, responses read and compared in
    /// order; a server abort ends the connection, and so does a client reset (linger 0) after some of a batch's
    /// responses, while the server is still sending the rest.
    /// </summary>
    private static async Task RunPipelinedConnectionAsync(Uri baseAddress, int worker, DateTime deadline, int maxBatches, Tally tally)
    {
        using var cts = new CancellationTokenSource(LongWaitLimit);
        var random = new Random(1000 + worker);
        RawHttpClient? client = null;
        try
        {
            for (int batch = 0; batch < maxBatches && DateTime.UtcNow < deadline; batch++)
            {
                client ??= await RawHttpClient.ConnectAsync(baseAddress, cts.Token);
                var plans = Enumerable.Range(0, random.Next(1, 9))
                    .Select(i => Plan.Next(random, forceAbort: batch == 0 && worker == 0 && i == 0))
                    .ToArray();
                var abortAt = Array.FindIndex(plans, plan => plan.ServerAborts);
                var resetAfter = (batch == 0 && worker == 1) || random.Next(16) == 0 ? random.Next(plans.Length) : -1;
                var requests = new StringBuilder();
                foreach (var plan in plans)
                {
                    requests.Append(CultureInfo.InvariantCulture, $"GET {plan.Path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
                }
                await client.SendAsync(requests.ToString(), cts.Token);

                for (int i = 0; i < plans.Length; i++)
                {
                    if (i == resetAfter)
                    {
                        client.Reset();
                        client = null;
                        Interlocked.Increment(ref tally.ClientResets);
                        break;
                    }
                    RawResponse response;
                    try
                    {
                        response = await client.ReadResponseAsync(cts.Token);
                    }
                    catch (Exception e) when (abortAt >= 0 && e is EndOfStreamException or SocketException or IOException)
                    {
                        // The abort resets the connection, and the responses before it that the client has not yet
                        // received go with it (as with Sockets: close with linger 0 drops what the kernel still holds).
                        client.Dispose();
                        client = null;
                        Interlocked.Increment(ref tally.ServerAborts);
                        break;
                    }
                    Assert.False(i == abortAt, $"{plans[i].Path} was aborted by the server, yet its whole body arrived.");
                    Assert.Equal(200, response.StatusCode);
                    AssertBody(plans[i], response.Body);
                    Interlocked.Increment(ref tally.Completed);
                }
            }
        }
        finally
        {
            client?.Dispose();
        }
    }

    private static async Task RunHttpClientWorkerAsync(SocketsHttpHandler handler, Uri baseAddress, Version version, int worker,
        DateTime deadline, int maxRequests, Tally tally)
    {
        var random = new Random(2000 + worker);
        for (int i = 0; i < maxRequests && DateTime.UtcNow < deadline; i++)
        {
            var plan = Plan.Next(random, forceAbort: i == 0 && worker == 0, forceReset: i == 0 && worker == 1);
            await RequestAsync(handler, baseAddress, version, plan, tally);
        }
    }

    /// <summary>
    /// One request. A client reset reads half the body and cancels (HTTP/2: RST_STREAM; HTTP/1.1: the connection is
    /// closed with the rest unread).
    /// </summary>
    private static async Task RequestAsync(SocketsHttpHandler handler, Uri baseAddress, Version version, Plan plan, Tally tally)
    {
        using var cts = new CancellationTokenSource(LongWaitLimit);
        using var invoker = new HttpMessageInvoker(handler, disposeHandler: false);
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(baseAddress, plan.Path))
        {
            Version = version,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        var body = new byte[plan.Length];
        var received = 0;
        try
        {
            using var response = await invoker.SendAsync(request, cts.Token);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(version, response.Version);
            await using var stream = await response.Content.ReadAsStreamAsync(cts.Token);
            var stopAt = plan.ClientResets ? plan.Length / 2 : plan.Length;
            while (received < stopAt)
            {
                var n = await stream.ReadAsync(body.AsMemory(received, stopAt - received), cts.Token);
                Assert.True(n > 0, $"The body of {plan.Path} ended after {received} bytes.");
                received += n;
            }
            if (plan.ClientResets)
            {
                cts.Cancel();
                Interlocked.Increment(ref tally.ClientResets);
                return;
            }
            Assert.Equal(0, await stream.ReadAsync(new byte[1], cts.Token));
        }
        catch (Exception e) when (plan.ServerAborts && e is HttpRequestException or IOException)
        {
            Interlocked.Increment(ref tally.ServerAborts);
            return;
        }
        Assert.False(plan.ServerAborts, $"{plan.Path} was aborted by the server, yet its whole body arrived.");
        AssertBody(plan, body);
        Interlocked.Increment(ref tally.Completed);
    }

    private static void AssertBody(Plan plan, byte[] body)
    {
        Assert.Equal(plan.Length, body.Length);
        var expected = s_pattern.AsSpan(plan.Offset, plan.Length);
        var same = expected.CommonPrefixLength(body);
        Assert.True(same == plan.Length, $"{plan.Path}: the body differs from byte {same} on.");
    }

    /// <summary>A handler that trusts the test certificate and opens plain sockets (no delay).</summary>
    private static SocketsHttpHandler CreateHandler() => new()
    {
        EnableMultipleHttp2Connections = false,
        MaxConnectionsPerServer = 32,
        SslOptions = { RemoteCertificateValidationCallback = TestCertificate.Validate },
    };

    private static int RouteInt(HttpContext context, string name)
        => int.Parse((string)context.Request.RouteValues[name]!, CultureInfo.InvariantCulture);

    private static byte[] CreatePattern()
    {
        var pattern = new byte[2 * MaxLength];
        new Random(256).NextBytes(pattern);
        return pattern;
    }
}
