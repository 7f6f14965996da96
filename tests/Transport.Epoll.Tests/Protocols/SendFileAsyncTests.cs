using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using EpollTransport.Tests.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.ResponseCompression;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.FileProviders;
using Xunit.Abstractions;

namespace EpollTransport.Tests.Protocols;

/// <summary>
/// <c>HttpResponse.SendFileAsync</c> on the epoll transport (<see cref="EpollTransportOptions.ZeroCopySendFile"/>):
/// what <c>Results.File</c>, <c>UseStaticFiles</c> and a plain endpoint send goes by sendfile where the bytes reach
/// the socket unchanged, byte-exact and with keep-alive and pipelining intact, and is copied, with its reason counted,
/// everywhere else.
/// </summary>
public sealed class SendFileAsyncTests(ITestOutputHelper output) : ProtocolTestBase(output), IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("epoll-sendfile-").FullName;

    public static TheoryData<string, int> Sizes
    {
        get
        {
            var cases = new TheoryData<string, int>();
            foreach (var transport in new[] { KestrelHost.Epoll, KestrelHost.EpollInline })
            {
                foreach (var size in new[] { 0, 1, 4095, 4096, 4097, 16 * 1024 - 1, 16 * 1024, 65535, 65536, 65537, 1024 * 1024, 4 * 1024 * 1024 + 1, 16 * 1024 * 1024 })
                {
                    cases.Add(transport, size);
                }
            }
            return cases;
        }
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Theory]
    [MemberData(nameof(Sizes))]
    public async Task SendFileAsyncIsByteExactAndGoesBySendfileFrom16KiB(string transport, int size)
    {
        var file = WriteFile(size);
        using var metrics = new SendFileMeasurements();
        await using var host = await StartAsync(transport);
        metrics.Listen(host);
        using var client = new HttpClient { BaseAddress = host.BaseAddress, Timeout = WaitLimit };

        var body = await client.GetByteArrayAsync($"send/{Path.GetFileName(file)}").WaitAsync(WaitLimit);

        Assert.Equal(SHA256.HashData(File.ReadAllBytes(file)), SHA256.HashData(body));
        // A next response on the same connection leaves the reactor after the sendfile's count.
        Assert.Equal("sync", await client.GetStringAsync("text/sync").WaitAsync(WaitLimit));
        Assert.Single(host.ConnectionIds);
        var zeroCopy = size >= 16 * 1024;
        Assert.Equal(zeroCopy ? size : 0, metrics.Observed(host, "epoll.connection.sendfile.bytes"));
        Assert.Equal(zeroCopy ? 1 : 0, metrics.Sum("epoll.sendfile.responses"));
        Assert.Equal(size is > 0 and < 16 * 1024 ? 1 : 0, metrics.Sum("epoll.sendfile.fallbacks", "small"));
        Assert.Empty(host.LoggedErrors);
    }

    [Theory]
    [InlineData(KestrelHost.Epoll)]
    [InlineData(KestrelHost.EpollInline)]
    public async Task ResultsFileAndUseStaticFilesSendWholeFilesAndRangesBySendfile(string transport)
    {
        var file = WriteFile(3 * 1024 * 1024 + 7);
        var bytes = File.ReadAllBytes(file);
        var name = Path.GetFileName(file);
        using var metrics = new SendFileMeasurements();
        await using var host = await StartAsync(transport);
        metrics.Listen(host);
        using var client = new HttpClient { BaseAddress = host.BaseAddress, Timeout = WaitLimit };

        Assert.Equal(SHA256.HashData(bytes), SHA256.HashData(await client.GetByteArrayAsync($"results/{name}").WaitAsync(WaitLimit)));
        Assert.Equal(SHA256.HashData(bytes), SHA256.HashData(await client.GetByteArrayAsync($"static/{name}").WaitAsync(WaitLimit)));
        foreach (var prefix in new[] { "results", "static" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"{prefix}/{name}");
            request.Headers.Range = new RangeHeaderValue(100_000, 2_200_000);
            using var response = await client.SendAsync(request).WaitAsync(WaitLimit);
            Assert.Equal(HttpStatusCode.PartialContent, response.StatusCode);
            var part = await response.Content.ReadAsByteArrayAsync().WaitAsync(WaitLimit);
            Assert.Equal(SHA256.HashData(bytes.AsSpan(100_000, 2_100_001)), SHA256.HashData(part));
        }
        Assert.Equal("sync", await client.GetStringAsync("text/sync").WaitAsync(WaitLimit));

        Assert.Equal(2 * bytes.Length + 2 * 2_100_001, metrics.Observed(host, "epoll.connection.sendfile.bytes"));
        Assert.Equal(4, metrics.Sum("epoll.sendfile.responses"));
        Assert.Equal(0, metrics.Sum("epoll.sendfile.fallbacks"));
        Assert.Single(host.ConnectionIds);
        Assert.Empty(host.LoggedErrors);
    }

    [Theory]
    [InlineData(KestrelHost.Epoll)]
    [InlineData(KestrelHost.EpollInline)]
    public async Task PipelinedStaticFilesAreAnsweredInOrderOnOneConnection(string transport)
    {
        var large = WriteFile(2 * 1024 * 1024 + 3);
        var small = WriteFile(40_000);
        await using var host = await StartAsync(transport);
        using var cts = new CancellationTokenSource(WaitLimit);
        using var client = await RawHttpClient.ConnectAsync(host.BaseAddress, cts.Token, bufferSize: 64 * 1024);

        await client.SendAsync(string.Concat(
            Get($"/static/{Path.GetFileName(large)}"), Get("/text/first"),
            Get($"/send/{Path.GetFileName(small)}"), Get("/text/second")), cts.Token);

        Assert.Equal(File.ReadAllBytes(large), (await client.ReadResponseAsync(cts.Token)).Body);
        Assert.Equal("first", Encoding.ASCII.GetString((await client.ReadResponseAsync(cts.Token)).Body));
        Assert.Equal(File.ReadAllBytes(small), (await client.ReadResponseAsync(cts.Token)).Body);
        Assert.Equal("second", Encoding.ASCII.GetString((await client.ReadResponseAsync(cts.Token)).Body));
        Assert.Single(host.ConnectionIds);
        Assert.Empty(host.LoggedErrors);
    }

    [Fact]
    public async Task ChunkedHeadAndNotModifiedResponsesAreCopiedOrEmptyAndCounted()
    {
        var file = WriteFile(200_000);
        var name = Path.GetFileName(file);
        using var metrics = new SendFileMeasurements();
        await using var host = await StartAsync(KestrelHost.Epoll);
        metrics.Listen(host);
        using var client = new HttpClient { BaseAddress = host.BaseAddress, Timeout = WaitLimit };

        // No Content-Length: Kestrel frames the body in chunks, which a region cannot be.
        using (var chunked = await client.GetAsync($"send/{name}?chunked=1").WaitAsync(WaitLimit))
        {
            Assert.True(chunked.Headers.TransferEncodingChunked);
            Assert.Equal(File.ReadAllBytes(file), await chunked.Content.ReadAsByteArrayAsync().WaitAsync(WaitLimit));
        }
        // HEAD: Kestrel sends no body.
        using (var head = await client.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"send/{name}")).WaitAsync(WaitLimit))
        {
            Assert.Equal(200_000, head.Content.Headers.ContentLength);
            Assert.Empty(await head.Content.ReadAsByteArrayAsync().WaitAsync(WaitLimit));
        }
        // 304: UseStaticFiles answers without calling SendFileAsync.
        using var first = await client.GetAsync($"static/{name}").WaitAsync(WaitLimit);
        using var conditional = new HttpRequestMessage(HttpMethod.Get, $"static/{name}");
        conditional.Headers.IfNoneMatch.Add(first.Headers.ETag!);
        using (var notModified = await client.SendAsync(conditional).WaitAsync(WaitLimit))
        {
            Assert.Equal(HttpStatusCode.NotModified, notModified.StatusCode);
            Assert.Empty(await notModified.Content.ReadAsByteArrayAsync().WaitAsync(WaitLimit));
        }
        Assert.Equal("sync", await client.GetStringAsync("text/sync").WaitAsync(WaitLimit));

        Assert.Equal(1, metrics.Sum("epoll.sendfile.fallbacks", "chunked"));
        Assert.Equal(1, metrics.Sum("epoll.sendfile.fallbacks", "head"));
        Assert.Equal(2, metrics.Sum("epoll.sendfile.fallbacks"));
        // The first static GET went by sendfile; the 304 sent nothing.
        Assert.Equal(1, metrics.Sum("epoll.sendfile.responses"));
        Assert.Equal(200_000, metrics.Observed(host, "epoll.connection.sendfile.bytes"));
        Assert.Empty(host.LoggedErrors);
    }

    [Fact]
    public async Task TlsIsCopiedAndCounted()
    {
        var file = WriteFile(300_000);
        using var metrics = new SendFileMeasurements();
        await using var host = await StartAsync(KestrelHost.Epoll, endpoint =>
        {
            endpoint.Protocols = HttpProtocols.Http1AndHttp2;
            endpoint.UseHttps(TestCertificate.Server);
        });
        metrics.Listen(host);
        using var handler = new SocketsHttpHandler { SslOptions = { RemoteCertificateValidationCallback = TestCertificate.Validate } };
        using var client = new HttpClient(handler) { BaseAddress = host.BaseAddress, Timeout = WaitLimit };
        foreach (var (version, reason) in new[] { (HttpVersion.Version11, "tls"), (HttpVersion.Version20, "protocol") })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"static/{Path.GetFileName(file)}") { Version = version, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
            using var response = await client.SendAsync(request).WaitAsync(WaitLimit);
            Assert.Equal(version, response.Version);
            Assert.Equal(File.ReadAllBytes(file), await response.Content.ReadAsByteArrayAsync().WaitAsync(WaitLimit));
            Assert.Equal(1, metrics.Sum("epoll.sendfile.fallbacks", reason));
        }
        Assert.Equal(0, metrics.Observed(host, "epoll.connection.sendfile.bytes"));
        Assert.Empty(host.LoggedErrors);
    }

    [Fact]
    public async Task CleartextHttp2IsCopiedAndCounted()
    {
        var file = WriteFile(300_000);
        using var metrics = new SendFileMeasurements();
        await using var host = await StartAsync(KestrelHost.Epoll, endpoint => endpoint.Protocols = HttpProtocols.Http2);
        metrics.Listen(host);
        using var client = new HttpClient { BaseAddress = host.BaseAddress, Timeout = WaitLimit, DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };

        // Two streams at once: each gets its own response body.
        var bodies = await Task.WhenAll(
            client.GetByteArrayAsync($"static/{Path.GetFileName(file)}"),
            client.GetByteArrayAsync($"send/{Path.GetFileName(file)}")).WaitAsync(WaitLimit);

        Assert.All(bodies, body => Assert.Equal(File.ReadAllBytes(file), body));
        Assert.Equal(2, metrics.Sum("epoll.sendfile.fallbacks", "protocol"));
        Assert.Equal(0, metrics.Observed(host, "epoll.connection.sendfile.bytes"));
    }

    [Fact]
    public async Task ResponseCompressionGetsTheFileAndWhatItPassesThroughStillGoesBySendfile()
    {
        var text = string.Concat(Enumerable.Repeat("zero copy, or compressed; never both. ", 5000));
        var file = Path.Combine(_folder, "page.txt");
        await File.WriteAllTextAsync(file, text);
        using var metrics = new SendFileMeasurements();
        await using var host = await StartAsync(KestrelHost.Epoll, e => e.Protocols = HttpProtocols.Http1, app =>
        {
            app.UseResponseCompression();
            Map(app);
        }, s => s.AddResponseCompression(o => o.Providers.Add<GzipCompressionProvider>()));
        metrics.Listen(host);
        using var client = new HttpClient { BaseAddress = host.BaseAddress, Timeout = WaitLimit };

        using var gzip = new HttpRequestMessage(HttpMethod.Get, "static/page.txt");
        gzip.Headers.AcceptEncoding.ParseAdd("gzip");
        using var compressed = await client.SendAsync(gzip).WaitAsync(WaitLimit);
        Assert.Equal("gzip", Assert.Single(compressed.Content.Headers.ContentEncoding));
        await using (var unzip = new GZipStream(await compressed.Content.ReadAsStreamAsync(), CompressionMode.Decompress))
        using (var reader = new StreamReader(unzip))
        {
            Assert.Equal(text, await reader.ReadToEndAsync().WaitAsync(WaitLimit));
        }
        Assert.Equal(0, metrics.Observed(host, "epoll.connection.sendfile.bytes"));

        // Without Accept-Encoding the compression middleware passes SendFileAsync through, to the zero-copy path.
        Assert.Equal(text, await client.GetStringAsync("static/page.txt").WaitAsync(WaitLimit));
        Assert.Equal("sync", await client.GetStringAsync("text/sync").WaitAsync(WaitLimit));
        Assert.Equal(Encoding.UTF8.GetByteCount(text), metrics.Observed(host, "epoll.connection.sendfile.bytes"));
        Assert.Empty(host.LoggedErrors);
    }

    [Fact]
    public async Task TurnedOffSendFileAsyncCopies()
    {
        var file = WriteFile(300_000);
        await using var host = await StartAsync(KestrelHost.Epoll, e => e.Protocols = HttpProtocols.Http1, Map,
            s => s.Configure<EpollTransportOptions>(o => o.ZeroCopySendFile = false));
        using var client = new HttpClient { BaseAddress = host.BaseAddress, Timeout = WaitLimit };

        Assert.Equal(File.ReadAllBytes(file), await client.GetByteArrayAsync($"static/{Path.GetFileName(file)}").WaitAsync(WaitLimit));
        Assert.Equal("sync", await client.GetStringAsync("text/sync").WaitAsync(WaitLimit));
        Assert.Equal(0, new SendFileMeasurements().Observed(host, "epoll.connection.sendfile.bytes"));
    }

    private static string Get(string path) => $"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n";

    private string WriteFile(int size)
    {
        var path = Path.Combine(_folder, $"f{size}-{Guid.NewGuid():N}.bin");
        File.WriteAllBytes(path, Payload(size));
        return path;
    }

    private Task<KestrelHost> StartAsync(string transport, Action<Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions>? endpoint = null)
        => StartAsync(transport, endpoint ?? (e => e.Protocols = HttpProtocols.Http1), Map);

    private void Map(WebApplication app)
    {
        app.UseStaticFiles(new StaticFileOptions
        {
            RequestPath = "/static",
            FileProvider = new PhysicalFileProvider(_folder),
            ServeUnknownFileTypes = true,
        });
        app.MapGet("/text/{word}", (string word) => Results.Text(word));
        app.MapGet("/results/{name}", (string name) =>
            Results.File(Path.Combine(_folder, name), "application/octet-stream", enableRangeProcessing: true));
        app.MapMethods("/send/{name}", ["GET", "HEAD"], async context =>
        {
            var path = Path.Combine(_folder, (string)context.Request.RouteValues["name"]!);
            if (context.Request.Query["chunked"].Count == 0)
            {
                context.Response.ContentLength = new FileInfo(path).Length;
            }
            await context.Response.SendFileAsync(path, context.RequestAborted);
        });
    }

    /// <summary>The server's SendFileAsync counters as they are added, and its observable counters on demand.</summary>
    private sealed class SendFileMeasurements : IDisposable
    {
        private readonly ConcurrentQueue<(string Name, string? Reason, long Value)> _seen = new();
        private MeterListener? _listener;

        public void Listen(KestrelHost host)
        {
            var factory = host.Services.GetRequiredService<IMeterFactory>();
            _listener = new MeterListener
            {
                InstrumentPublished = (instrument, l) =>
                {
                    if (instrument.Meter.Scope == factory && instrument.Name.StartsWith("epoll.sendfile.", StringComparison.Ordinal))
                    {
                        l.EnableMeasurementEvents(instrument);
                    }
                },
            };
            _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
            {
                string? reason = null;
                foreach (var tag in tags)
                {
                    if (tag.Key == "epoll.sendfile.fallback.reason")
                    {
                        reason = (string?)tag.Value;
                    }
                }
                _seen.Enqueue((instrument.Name, reason, value));
            });
            _listener.Start();
        }

        public long Sum(string name, string? reason = null)
            => _seen.Where(m => m.Name == name && (reason is null || m.Reason == reason)).Sum(m => m.Value);

        /// <summary>An observable counter of the server's meter, summed over its reactors.</summary>
        public long Observed(KestrelHost host, string name) => FileRegionTests.Counter(host, name);

        public void Dispose() => _listener?.Dispose();
    }
}
