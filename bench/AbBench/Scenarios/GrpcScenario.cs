using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;

namespace AbBench;

/// <summary>
/// grpc: unary gRPC calls over HTTP/2 cleartext through h2load, on the h2 scenario's machinery: every request is a
/// POST of one prebuilt SayHello call to the sample's greeter. A gRPC call carries its status in the response's
/// trailers (<c>grpc-status</c>), which h2load never reads: it counts HTTP statuses, and a failed call is usually
/// HTTP 200. So the sample counts the gRPC calls it answered by outcome (<c>GET /grpc/calls</c>), and a run is
/// refused when any call it answered during the run, h2load's own warm-up included, ended without grpc-status 0, or
/// when it answered fewer calls with grpc-status 0 than h2load completed.
/// </summary>
internal sealed class GrpcScenario : Scenario
{
    private const string SayHelloPath = "/greet.Greeter/SayHello";
    private const string CallsPath = "/grpc/calls";

    /// <summary>
    /// One gRPC message (a compressed flag of 0, then the length as 4 bytes big-endian) holding
    /// HelloRequest{name = "world"}: field 1 with wire type 2 (tag 0x0a), a length of 5, the UTF-8 bytes.
    /// </summary>
    private static readonly byte[] HelloWorldRequest = [0, 0, 0, 0, 7, 0x0a, 5, .. "world"u8];

    /// <summary>The sample's answer to it, framed the same way: HelloReply{message = "Hello world"}.</summary>
    private static readonly byte[] HelloWorldReply = [0, 0, 0, 0, 13, 0x0a, 11, .. "Hello world"u8];

    private static readonly string[] GrpcHeaders = ["content-type: application/grpc", "te: trailers"];

    public override string Name => "grpc";

    public override string Summary => $"unary gRPC greet.Greeter/SayHello over HTTP/2 cleartext, {H2Scenario.DefaultConnections} connections x {H2Load.StreamsPerConnection} streams (h2load)";

    public override LoadTool Tool => LoadTool.H2Load;

    public override Task<ScenarioPlan> PlanAsync(BenchContext context)
    {
        var ct = context.Cancellation;
        var files = TempSite.Create();
        var client = NewClient();
        try
        {
            var bodyFile = Path.Combine(files.Folder, "hello-world.grpc");
            File.WriteAllBytes(bodyFile, HelloWorldRequest);
            var path = context.Options.PathOverride ?? SayHelloPath;
            var plan = H2Scenario.Plan(context, new H2Workload(Name,
                $"unary gRPC calls over HTTP/2 cleartext, POST {path}, {H2Load.StreamsPerConnection} streams per connection (h2load)",
                new H2LoadRequest(path) { BodyFile = bodyFile, Headers = GrpcHeaders })
            {
                AfterStart = (server, variant) => CheckReplyAsync(client, variant.Name, server.Port, ct),
                Finish = TransportTargets.Grpc,
                RunCheck = new H2RunCheck("grpc-status ≠ 0", async server =>
                {
                    var before = await ReadCallsAsync(client, server.Port, ct);
                    return async r =>
                    {
                        var after = await ReadCallsAsync(client, server.Port, ct);
                        return Judge(new GrpcCalls(after.Ok - before.Ok, after.Failed - before.Failed), r.Done);
                    };
                }),
            });
            plan.Resources.Add(files);
            plan.Resources.Add(client);
            plan.Result.Notes.Add($"Request body (h2load -d, {HelloWorldRequest.Length} bytes): {Convert.ToHexString(HelloWorldRequest)}, one gRPC message holding HelloRequest{{name=\"world\"}}; before any load each server must answer it with HelloReply{{message=\"Hello world\"}} and grpc-status 0");
            plan.Result.Notes.Add($"h2load cannot read trailers, where gRPC puts its status: each run reads the sample's count of the gRPC calls it answered (GET {CallsPath}) before and after h2load, and is refused if any call answered in between (h2load's warm-up included) ended without grpc-status 0, or if fewer ended with grpc-status 0 than h2load completed; calls not OK whose client had already reset the stream or closed the connection are left out, as no client saw their answer. The raw runs' column grpc-status ≠ 0 counts the calls that ended without it");
            return Task.FromResult(plan);
        }
        catch
        {
            client.Dispose();
            files.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The run's problem, if any. A call answered without grpc-status 0 and not abandoned reached the client (its
    /// trailers are sent only after the sample has counted it), so it is a response h2load took for a success.
    /// </summary>
    private static (string Detail, string? Problem) Judge(GrpcCalls duringRun, long completed) =>
        (Fmt.Count(duringRun.Failed),
            duringRun.Failed > 0 ? $"{duringRun.Failed} gRPC call(s) answered without grpc-status 0"
            : duringRun.Ok < completed ? $"h2load completed {completed} requests, but the server answered only {duringRun.Ok} gRPC calls with grpc-status 0"
            : null);

    /// <summary>HTTP/2 by prior knowledge, as the servers of this scenario speak nothing else (for GetAsync; a request message says it itself).</summary>
    private static HttpClient NewClient() => new(new SocketsHttpHandler { UseProxy = false })
    {
        DefaultRequestVersion = HttpVersion.Version20,
        DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        Timeout = TimeSpan.FromSeconds(30),
    };

    /// <summary>
    /// One call with the body h2load sends, before any load: h2load checks neither the reply nor its status, so a
    /// server that answered every call with something else would otherwise be measured.
    /// </summary>
    private static async Task CheckReplyAsync(HttpClient client, string server, int port, CancellationToken ct)
    {
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, $"http://127.0.0.1:{port}{SayHelloPath}")
            {
                Content = new ByteArrayContent(HelloWorldRequest),
                Version = HttpVersion.Version20,
                VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            };
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/grpc");
            request.Headers.TE.Add(new TransferCodingWithQualityHeaderValue("trailers"));
            using var response = await client.SendAsync(request, ct);
            var body = await response.Content.ReadAsByteArrayAsync(ct);
            var status = response.TrailingHeaders.TryGetValues("grpc-status", out var values) ? string.Join(",", values)
                : response.Headers.TryGetValues("grpc-status", out values) ? string.Join(",", values)
                : "none";
            var problem = response.StatusCode != HttpStatusCode.OK ? $"HTTP status {(int)response.StatusCode}, not 200"
                : status != "0" ? $"grpc-status {status}, not 0"
                : !body.AsSpan().SequenceEqual(HelloWorldReply) ? $"the body {Convert.ToHexString(body)}, not {Convert.ToHexString(HelloWorldReply)}"
                : null;
            if (problem is not null)
            {
                throw new BenchException($"{server} answered POST {SayHelloPath} with {problem}.");
            }
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            throw new BenchException($"{server}: POST {SayHelloPath} failed: {e.Message}");
        }
    }

    private static async Task<GrpcCalls> ReadCallsAsync(HttpClient client, int port, CancellationToken ct)
    {
        try
        {
            using var response = await client.GetAsync($"http://127.0.0.1:{port}{CallsPath}", ct);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                throw new BenchException($"GET {CallsPath} answered HTTP {(int)response.StatusCode}: the sample does not count its gRPC calls.");
            }
            using var json = await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(ct), cancellationToken: ct);
            var root = json.RootElement;
            return new GrpcCalls(root.GetProperty("ok").GetInt64(), root.GetProperty("failed").GetInt64());
        }
        catch (Exception e) when (e is HttpRequestException or JsonException or KeyNotFoundException or InvalidOperationException or FormatException
                                  || e is TaskCanceledException && !ct.IsCancellationRequested)
        {
            throw new BenchException($"GET {CallsPath} failed: {e.Message}");
        }
    }

    /// <summary>gRPC calls the sample answered: with grpc-status 0, and without it (abandoned calls left out).</summary>
    private sealed record GrpcCalls(long Ok, long Failed);
}
