using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Grpc.Core;
using Grpc.Net.Client;
using WebApp;

namespace EpollTransport.Tests.Protocols;

/// <summary>
/// The sample's gRPC greeter (<c>greet.Greeter/SayHello</c>) called with Grpc.Net.Client over HTTP/2 cleartext, on the
/// sample itself (a child process, as the other sample tests run it) with each transport and cleartext HTTP/2 by prior
/// knowledge, as the README and the bench's grpc scenario start it. Also the sample's count of its calls by
/// grpc-status (<c>GET /grpc/calls</c>), which the bench relies on because h2load cannot read trailers.
/// </summary>
public sealed class GrpcTests
{
    // Kestrel's default SETTINGS_MAX_CONCURRENT_STREAMS is 100: twice as many calls keep every stream of the one
    // connection busy, and half of the calls wait for a stream to be freed.
    private const int ConcurrentCalls = 200;

    public static TheoryData<string> Transports => KestrelHost.Transports;

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task SayHelloAnswersWithStatusOk(string transport)
    {
        using var server = StartSample(transport);
        using var channel = await OpenChannelAsync(server);
        var client = new Greeter.GreeterClient(channel);

        using var call = client.SayHelloAsync(new HelloRequest { Name = "world" });
        var reply = await call.ResponseAsync.WaitAsync(WaitLimit);

        Assert.Equal("Hello world", reply.Message);
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
        await server.Logged(StartupLine(transport)).WaitAsync(WaitLimit);
        Assert.Equal(new Calls(1, 0), await ReadCallsAsync(server));
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task ConcurrentCallsOnOneChannelAreAllAnswered(string transport)
    {
        using var server = StartSample(transport);
        using var channel = await OpenChannelAsync(server);
        var client = new Greeter.GreeterClient(channel);

        async Task<string> SayHelloAsync(int caller)
        {
            using var call = client.SayHelloAsync(new HelloRequest { Name = $"caller {caller}" });
            var reply = await call.ResponseAsync;
            Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
            return reply.Message;
        }

        var replies = await Task.WhenAll(Enumerable.Range(0, ConcurrentCalls).Select(SayHelloAsync)).WaitAsync(WaitLimit);

        Assert.Equal(Enumerable.Range(0, ConcurrentCalls).Select(i => $"Hello caller {i}"), replies);
        Assert.Equal(new Calls(ConcurrentCalls, 0), await ReadCallsAsync(server));
    }

    [Fact]
    public async Task CallsThatFailAreCountedAsFailed()
    {
        using var server = StartSample(KestrelHost.Epoll);
        var address = await AddressAsync(server);
        using var http = NewHttp2Client();

        // Sent as h2load sends its calls: both answers are HTTP 200, which h2load takes for a success.
        byte[] helloWorld = [0, 0, 0, 0, 7, 0x0a, 5, .. "world"u8];
        Assert.Equal("0", await PostAsync(http, $"{address}greet.Greeter/SayHello", helloWorld));
        // A method the service does not have: 12, Unimplemented.
        Assert.Equal("12", await PostAsync(http, $"{address}greet.Greeter/SayGoodbye", helloWorld));
        // A message that is no HelloRequest: field 1 with wire type 7, which does not exist.
        Assert.NotEqual("0", await PostAsync(http, $"{address}greet.Greeter/SayHello", [0, 0, 0, 0, 2, 0x0f, 0x00]));

        Assert.Equal(new Calls(1, 2), await ReadCallsAsync(server));
    }

    /// <summary>A unary call as raw HTTP/2: its grpc-status, from the trailers or from a trailers-only answer's headers.</summary>
    private static async Task<string> PostAsync(HttpClient http, string url, byte[] message)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, url)
        {
            Content = new ByteArrayContent(message),
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/grpc");
        using var response = await http.SendAsync(request).WaitAsync(WaitLimit);
        await response.Content.ReadAsByteArrayAsync().WaitAsync(WaitLimit);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var status = response.TrailingHeaders.TryGetValues("grpc-status", out var trailer) ? trailer : response.Headers.GetValues("grpc-status");
        return Assert.Single(status);
    }

    /// <summary>The sample with cleartext HTTP/2 only, the way to serve gRPC without TLS.</summary>
    private static SampleProcess StartSample(string transport) => new(null,
    [
        .. transport switch
        {
            KestrelHost.Epoll => (string[])[],
            KestrelHost.EpollInline => ["--inline"],
            KestrelHost.Sockets => ["--transport", "sockets"],
            _ => throw new ArgumentOutOfRangeException(nameof(transport), transport, "Unknown transport."),
        },
        "--Kestrel:EndpointDefaults:Protocols", "Http2",
    ]);

    private static string StartupLine(string transport) => transport switch
    {
        KestrelHost.Epoll => "Transport: epoll; inline scheduling: off",
        KestrelHost.EpollInline => "Transport: epoll; inline scheduling: on",
        _ => "Transport: sockets; inline scheduling: off",
    };

    /// <summary>A channel of one HTTP/2 connection: a second one is never opened, whatever the number of calls.</summary>
    private static async Task<GrpcChannel> OpenChannelAsync(SampleProcess server) =>
        GrpcChannel.ForAddress(await AddressAsync(server), new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler { EnableMultipleHttp2Connections = false, UseProxy = false },
            DisposeHttpClient = true,
        });

    private static async Task<string> AddressAsync(SampleProcess server) =>
        $"http://127.0.0.1:{await server.ListeningPort.WaitAsync(WaitLimit)}/";

    private static HttpClient NewHttp2Client() => new(new SocketsHttpHandler { UseProxy = false })
    {
        DefaultRequestVersion = HttpVersion.Version20,
        DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        Timeout = WaitLimit,
    };

    private static async Task<Calls> ReadCallsAsync(SampleProcess server)
    {
        using var http = NewHttp2Client();
        using var json = JsonDocument.Parse(await http.GetStringAsync($"{await AddressAsync(server)}grpc/calls").WaitAsync(WaitLimit));
        var counts = json.RootElement;
        Assert.Equal(0, counts.GetProperty("abandoned").GetInt64());
        return new Calls(counts.GetProperty("ok").GetInt64(), counts.GetProperty("failed").GetInt64());
    }

    private sealed record Calls(long Ok, long Failed);
}
