using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Xunit.Abstractions;

namespace EpollTransport.Tests.Faults;

/// <summary>
/// Malformed bytes on many connections at once: each gets Kestrel's error status (or is just closed), and neither
/// the process nor a connection with a request in progress notices. HttpFunctionalTests has one connection per
/// malformation and the oversized header (431); these add seeded random garbage, NUL and bare LF in the request line,
/// broken chunk sizes and the other limits, all in flight together.
/// </summary>
public sealed class MalformedRequestTests(ITestOutputHelper output)
{
    private const int GarbageConnections = 48;
    private const int MaxGarbageSize = 16 * 1024;
    private const int InProgressBodySize = 300_000;

    public static TheoryData<string> Transports => KestrelHost.Transports;

    /// <summary>Requests that Kestrel must refuse, each with the status it answers (the same on every transport).</summary>
    private static readonly (string Name, string Request, int Status)[] s_malformed =
    [
        ("bare LF in the request line", "GET /ok/a\nb HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("NUL in the target", "GET /ok/a\0b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("NUL in the method", "G\0T /ok/a HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("NUL in a header value", "GET /ok/a HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n", 400),
        ("invalid chunk size", "POST /drain HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n", 400),
        // Kestrel's own answer, on Sockets too: the overflow surfaces as an IOException ("Bad chunk size data"), not as
        // a bad request, and an exception out of the app is a 500.
        ("chunk size overflow", "POST /drain HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFFFF\r\n", 500),
        ("chunk without its CRLF", "POST /drain HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n", 400),
        ("non-numeric Content-Length", "POST /drain HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n", 400),
        ("negative Content-Length", "POST /drain HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
        ("header without a colon", "GET /ok/a HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", 400),
        ("space before the colon", "GET /ok/a HTTP/1.1\r\nHost : x\r\n\r\n", 400),
        ("no Host header", "GET /ok/a HTTP/1.1\r\n\r\n", 400),
        ("request line too long", "GET /" + new string('a', 10_000) + " HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        ("too many headers", "GET /ok/a HTTP/1.1\r\nHost: x\r\n" + string.Concat(Enumerable.Range(0, 120).Select(i => $"X-{i}: v\r\n")) + "\r\n", 431),
        ("unknown HTTP version", "GET /ok/a HTTP/1.7\r\nHost: x\r\n\r\n", 505),
    ];

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task MalformedRequestsGetAnErrorOrACloseWhileAnotherRequestIsInProgress(string transport)
    {
        await using var server = await FaultServer.StartAsync(transport, app =>
        {
            FaultServer.MapOk(app);
            // A bad body throws BadHttpRequestException out of the app, and Kestrel answers its status (caught, the
            // app would answer 200 itself).
            app.MapPost("/drain", context => context.Request.Body.CopyToAsync(Stream.Null));
            app.MapPost("/echo", async context =>
            {
                context.Response.ContentLength = context.Request.ContentLength;
                await context.Request.BodyReader.CopyToAsync(context.Response.BodyWriter);
            });
        }, output);
        using var cts = new CancellationTokenSource(WaitLimit * 2);

        // A request in progress: half its body is sent before the malformed bytes, the rest after them.
        var body = ResetStormTests.Pattern(InProgressBodySize);
        using var inProgress = await RawHttpClient.ConnectAsync(server.BaseAddress, cts.Token);
        await inProgress.SendAsync($"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {body.Length}\r\n\r\n", cts.Token);
        await inProgress.SendAsync(body.AsMemory(0, body.Length / 2), cts.Token);
        // The echo comes back while the body goes out: read it at the same time.
        var echoed = inProgress.ReadResponseAsync(cts.Token);

        using var keepAlive = await RawHttpClient.ConnectAsync(server.BaseAddress, cts.Token);
        await FaultServer.AssertOkAsync(keepAlive, "before", cts.Token);

        var random = new Random(20240611);
        var garbage = Enumerable.Range(0, GarbageConnections).Select(_ =>
        {
            var bytes = new byte[random.Next(1, MaxGarbageSize + 1)];
            random.NextBytes(bytes);
            return bytes;
        }).ToArray();

        var results = await Task.WhenAll(
            s_malformed.Select(m => SendAsync(server, m.Name, Encoding.Latin1.GetBytes(m.Request), halfClose: false, cts.Token))
            .Concat(garbage.Select((g, i) => SendAsync(server, $"garbage #{i} ({g.Length} bytes)", g, halfClose: true, cts.Token))))
            .WaitAsync(cts.Token);

        Assert.All(results, r => Assert.True(r.Closed, $"{r.Name}: the server kept the connection open."));
        foreach (var (name, received, reset, _) in results.Take(s_malformed.Length))
        {
            var expected = s_malformed.Single(m => m.Name == name).Status;
            Assert.True(RawHttpClient.StatusOf(received) == expected,
                $"{name}: expected {expected}, got {(received.Length == 0 ? "no response" : Encoding.Latin1.GetString(received).Split("\r\n")[0])}{(reset ? " and a reset" : "")}.");
        }
        var garbageStatuses = new Dictionary<string, int>();
        foreach (var (name, received, reset, _) in results.Skip(s_malformed.Length))
        {
            // Random bytes are never a request: an error status, or no answer at all, and the connection closed.
            var status = RawHttpClient.StatusOf(received);
            Assert.True(received.Length == 0 || status is >= 400 and < 600,
                $"{name}: got {Encoding.Latin1.GetString(received, 0, Math.Min(received.Length, 80))}.");
            var key = (status?.ToString(CultureInfo.InvariantCulture) ?? "no answer") + (reset ? " then RST" : " then FIN");
            garbageStatuses[key] = garbageStatuses.GetValueOrDefault(key) + 1;
        }
        output.WriteLine($"[{transport}] garbage answers: {string.Join(", ", garbageStatuses.Select(p => $"{p.Key} x{p.Value}"))}");

        // The request in progress completes, byte exact, and the keep-alive connection is still served.
        await inProgress.SendAsync(body.AsMemory(body.Length / 2), cts.Token);
        var response = await echoed.WaitAsync(cts.Token);
        Assert.Equal(200, response.StatusCode);
        Assert.True(body.AsSpan().SequenceEqual(response.Body), "The request in progress got a damaged echo.");
        await FaultServer.AssertOkAsync(keepAlive, "after", cts.Token);

        // Every malformed connection was closed by the server; with these two closed too, none is left.
        inProgress.Dispose();
        keepAlive.Dispose();
        await server.AssertAllConnectionsGoneAsync(total: 2 + s_malformed.Length + GarbageConnections);
        // Kestrel logs the bad bodies' exceptions as the app's unhandled exceptions (event 13); nothing else may be
        // logged as an error.
        Assert.DoesNotContain(server.UnexpectedErrors, e =>
            !(e.Contains("Microsoft.AspNetCore.Server.Kestrel[13]", StringComparison.Ordinal)
              && (e.Contains("BadHttpRequestException", StringComparison.Ordinal) || e.Contains("Bad chunk size data", StringComparison.Ordinal))));
    }

    /// <summary>
    /// Sends <paramref name="bytes"/> on a new connection (then FIN with <paramref name="halfClose"/>: garbage need
    /// not end where a parser would know it ended) and reads until the server closes, or until the fault tests'
    /// timeout: <c>Closed</c> says which.
    /// </summary>
    private static async Task<(string Name, byte[] Received, bool Reset, bool Closed)> SendAsync(FaultServer server, string name,
        byte[] bytes, bool halfClose, CancellationToken cancellationToken)
    {
        using var client = await RawHttpClient.ConnectAsync(server.BaseAddress, cancellationToken);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(WaitLimit);
        var answer = client.ReadToEndAsync(timeout.Token);
        try
        {
            await client.SendAsync(bytes, cancellationToken);
            if (halfClose)
            {
                client.Socket.Shutdown(SocketShutdown.Send);
            }
        }
        catch (SocketException)
        {
            // The server answered and closed before all of it was sent (e.g. at the request line limit).
        }
        try
        {
            var (received, reset) = await answer;
            return (name, received, reset, true);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return (name, [], false, false);
        }
    }
}
