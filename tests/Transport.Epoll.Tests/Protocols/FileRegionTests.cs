using System.Diagnostics.Metrics;
using System.Globalization;
using System.Buffers;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using EpollTransport.Tests.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Win32.SafeHandles;
using Xunit.Abstractions;

namespace EpollTransport.Tests.Protocols;

/// <summary>
/// File regions (<see cref="IEpollFileRegionFeature"/>) through real Kestrel: an endpoint arms a region of a file,
/// advances the body writer over it without writing, and the transport sends the file with sendfile between the
/// response's pipe bytes. Bodies must be byte-exact, keep-alive and pipelining intact, and connections the transport
/// cannot send a region on (TLS, HTTP/2) must refuse to arm, so the endpoint copies.
/// </summary>
public sealed class FileRegionTests(ITestOutputHelper output) : ProtocolTestBase(output), IDisposable
{
    private const string PathHeader = "X-Body-Path";
    private readonly string _folder = Directory.CreateTempSubdirectory("epoll-file-region-").FullName;
    private readonly System.Collections.Concurrent.ConcurrentQueue<string> _taken = new();

    public static TheoryData<string, int> Sizes
    {
        get
        {
            var cases = new TheoryData<string, int>();
            foreach (var transport in new[] { KestrelHost.Epoll, KestrelHost.EpollInline })
            {
                foreach (var size in new[] { 1, 4095, 4096, 4097, 65535, 65536, 65537, 1024 * 1024, 1024 * 1024 + 1, 3 * 1024 * 1024 + 7 })
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
    public async Task ARegionIsSentByteExactBySendfile(string transport, int size)
    {
        var file = WriteFile(size);
        await using var host = await StartAsync(transport);
        using var client = new HttpClient { BaseAddress = host.BaseAddress, Timeout = WaitLimit };
        var before = SendfileBytes(host);

        using var response = await client.GetAsync($"file/{Path.GetFileName(file)}").WaitAsync(WaitLimit);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(["region"], _taken);
        var body = await response.Content.ReadAsByteArrayAsync().WaitAsync(WaitLimit);
        Assert.Equal(SHA256.HashData(File.ReadAllBytes(file)), SHA256.HashData(body));
        // The reactor counts a sendfile's bytes just after the call, which the client can outrun; a next response on
        // the same connection leaves the same reactor after that count.
        Assert.Equal("sync", await client.GetStringAsync("text/sync").WaitAsync(WaitLimit));
        Assert.Single(host.ConnectionIds);
        Assert.True(SendfileBytes(host) - before >= size, "the bytes did not go through sendfile");
        Assert.Empty(host.LoggedErrors);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task PipelinedRequestsAroundRegionsAreAnsweredInOrderOnOneConnection(string transport)
    {
        if (transport == KestrelHost.Sockets)
        {
            return;
        }
        var small = WriteFile(5000);
        var large = WriteFile(2 * 1024 * 1024 + 3);
        await using var host = await StartAsync(transport);
        using var cts = new CancellationTokenSource(WaitLimit);
        using var client = await RawHttpClient.ConnectAsync(host.BaseAddress, cts.Token, bufferSize: 64 * 1024);

        // Four requests in one write: a region, a plain response, a larger region, and a plain response after it.
        var requests = string.Concat(
            Get($"/file/{Path.GetFileName(large)}"), Get("/text/first"),
            Get($"/file/{Path.GetFileName(small)}"), Get("/text/second"));
        await client.SendAsync(requests, cts.Token);

        AssertBody(await client.ReadResponseAsync(cts.Token), File.ReadAllBytes(large), "region");
        Assert.Equal("first", Encoding.ASCII.GetString((await client.ReadResponseAsync(cts.Token)).Body));
        AssertBody(await client.ReadResponseAsync(cts.Token), File.ReadAllBytes(small), "region");
        Assert.Equal("second", Encoding.ASCII.GetString((await client.ReadResponseAsync(cts.Token)).Body));
        Assert.Equal(["region", "region"], _taken);
        Assert.Single(host.ConnectionIds);
        Assert.Empty(host.LoggedErrors);
    }

    [Fact]
    public async Task AFileShorterThanItsRegionAbortsTheConnectionInsteadOfHanging()
    {
        var file = WriteFile(100_000);
        await using var host = await StartAsync(KestrelHost.Epoll);
        using var cts = new CancellationTokenSource(WaitLimit);
        using var client = await RawHttpClient.ConnectAsync(host.BaseAddress, cts.Token);

        // The endpoint arms 100 bytes more than the file holds, as if it shrank after its length was read.
        await client.SendAsync(Get($"/file/{Path.GetFileName(file)}?extra=100"), cts.Token);
        var (received, _) = await client.ReadToEndAsync(cts.Token, maxBytes: 1024 * 1024);

        // The connection ended (the read returned) short of Content-Length. The abort is a reset, which discards
        // what was still queued on the server's side, so the body may stop anywhere before the file's end; what
        // arrived is the file's own bytes.
        var text = Encoding.Latin1.GetString(received);
        var headEnd = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        if (headEnd > 0)
        {
            Assert.Contains("Content-Length: 100100", text[..headEnd], StringComparison.OrdinalIgnoreCase);
            var body = received.AsSpan(headEnd + 4);
            Assert.True(body.Length <= 100_000, $"{body.Length} body bytes");
            Assert.True(body.SequenceEqual(File.ReadAllBytes(file).AsSpan(0, body.Length)));
        }
        Assert.Single(host.ConnectionIds);
    }

    [Fact]
    public async Task TlsConnectionsRefuseToArmAndTheEndpointCopies()
    {
        var file = WriteFile(300_000);
        await using var host = await StartAsync(KestrelHost.Epoll, endpoint =>
        {
            endpoint.Protocols = HttpProtocols.Http1AndHttp2;
            endpoint.UseHttps(TestCertificate.Server);
        });
        using var handler = new SocketsHttpHandler { SslOptions = { RemoteCertificateValidationCallback = TestCertificate.Validate } };
        using var client = new HttpClient(handler) { BaseAddress = host.BaseAddress, Timeout = WaitLimit };
        foreach (var version in new[] { HttpVersion.Version11, HttpVersion.Version20 })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"file/{Path.GetFileName(file)}") { Version = version, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
            using var response = await client.SendAsync(request).WaitAsync(WaitLimit);
            Assert.Equal(version, response.Version);
            Assert.Equal(File.ReadAllBytes(file), await response.Content.ReadAsByteArrayAsync().WaitAsync(WaitLimit));
        }
        // Both tried to arm and were refused.
        Assert.Equal(["copy", "copy"], _taken);
        Assert.Equal(0, SendfileBytes(host));
        Assert.Empty(host.LoggedErrors);
    }

    [Fact]
    public async Task CleartextHttp2ConnectionsRefuseToArm()
    {
        var file = WriteFile(300_000);
        await using var host = await StartAsync(KestrelHost.EpollReactorSends, endpoint => endpoint.Protocols = HttpProtocols.Http2);
        using var client = new HttpClient { BaseAddress = host.BaseAddress, Timeout = WaitLimit, DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };

        using var response = await client.GetAsync($"file/{Path.GetFileName(file)}").WaitAsync(WaitLimit);

        Assert.Equal(File.ReadAllBytes(file), await response.Content.ReadAsByteArrayAsync().WaitAsync(WaitLimit));
        Assert.Equal(["copy"], _taken);
        Assert.Equal(0, SendfileBytes(host));
    }

    [Theory]
    [InlineData(KestrelHost.Epoll)]
    [InlineData(KestrelHost.EpollInline)]
    public async Task AFileNotInThePageCacheIsReadAheadOffTheReactorBeforeItIsSent(string transport)
    {
        var size = 2 * 1024 * 1024 + 5;
        var path = Path.Combine(_folder, "cold.bin");
        using (var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write))
        {
            stream.Write(Payload(size));
            // DONTNEED drops clean pages only.
            stream.Flush(flushToDisk: true);
        }
        await DropFromPageCacheAsync(path);
        using (var handle = File.OpenHandle(path))
        {
            var check = EpollTransport.Interop.FileRegionInterop.IsResident(handle, 0, size, out var resident);
            Assert.False(check.IsSuccess && resident, "the file is still in the page cache");
        }
        await using var host = await StartAsync(transport);
        using var client = new HttpClient { BaseAddress = host.BaseAddress, Timeout = WaitLimit };

        var cold = await client.GetByteArrayAsync("file/cold.bin").WaitAsync(WaitLimit);
        var readAheads = Counter(host, "epoll.connection.sendfile.read_aheads");
        var hot = await client.GetByteArrayAsync("file/cold.bin").WaitAsync(WaitLimit);

        Assert.Equal(SHA256.HashData(Payload(size)), SHA256.HashData(cold));
        Assert.Equal(SHA256.HashData(Payload(size)), SHA256.HashData(hot));
        // Two chunks of 1 MiB and a tail: each was read ahead before its sendfile.
        Assert.True(readAheads >= 1, $"read-aheads: {readAheads}");
        using (var handle = File.OpenHandle(path))
        {
            if (EpollTransport.Interop.FileRegionInterop.IsResident(handle, 0, size, out _).IsSuccess)
            {
                // Found read (mincore), the now cached file is sent without another read-ahead.
                Assert.Equal(readAheads, Counter(host, "epoll.connection.sendfile.read_aheads"));
            }
        }
        Assert.Equal(["region", "region"], _taken);
    }

    [Fact]
    public async Task ARegionArmedAsReadIsSentWithoutACheck()
    {
        // The caller's word (pagesReady) is taken: no check, so no read-ahead even for a file dropped from the cache
        // (sendfile reads it itself). AMPED says so only for a range it has just found read or read in.
        var size = 1024 * 1024 + 5;
        var path = Path.Combine(_folder, "said-ready.bin");
        using (var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write))
        {
            stream.Write(Payload(size));
            stream.Flush(flushToDisk: true);
        }
        await DropFromPageCacheAsync(path);
        await using var host = await StartAsync(KestrelHost.Epoll);
        using var client = new HttpClient { BaseAddress = host.BaseAddress, Timeout = WaitLimit };

        var body = await client.GetByteArrayAsync("file/said-ready.bin?ready=1").WaitAsync(WaitLimit);
        Assert.Equal("sync", await client.GetStringAsync("text/sync").WaitAsync(WaitLimit));

        Assert.Equal(SHA256.HashData(Payload(size)), SHA256.HashData(body));
        Assert.Equal(0, Counter(host, "epoll.connection.sendfile.read_aheads"));
        Assert.True(SendfileBytes(host) >= size);
    }

    /// <summary>posix_fadvise(DONTNEED) over the whole file, by coreutils' dd.</summary>
    private static async Task DropFromPageCacheAsync(string path)
    {
        using var dd = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("dd", ["if=" + path, "iflag=nocache", "count=0", "status=none"]))!;
        await dd.WaitForExitAsync().WaitAsync(WaitLimit);
        Assert.Equal(0, dd.ExitCode);
    }

    [Fact]
    public async Task AnArmedAdvanceThatKestrelBuffersIsReportedAndItsScratchBytesNeverLeave()
    {
        const int PipeBytes = 4 * 1024 * 1024;
        const int RegionBytes = 64 * 1024;
        var file = WriteFile(RegionBytes);
        var missing = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var host = await StartAsync(KestrelHost.Epoll, endpoint => endpoint.Protocols = HttpProtocols.Http1, app =>
            app.MapGet("/misused", async context =>
            {
                context.Response.ContentLength = PipeBytes + RegionBytes;
                await context.Response.StartAsync();
                var writer = context.Response.BodyWriter;
                writer.Write(Enumerable.Repeat((byte)'p', PipeBytes).ToArray());
                // Not awaited, against the feature's rule: with the client not reading, this flush stays pending, and
                // meanwhile Kestrel keeps what is written in a buffer of its own instead of passing it on.
                var pending = writer.FlushAsync();
                try
                {
                    using var handle = File.OpenHandle(file);
                    var region = context.Features.Get<IEpollFileRegionFeature>()!;
                    Assert.True(region.TryArm(handle, 0, RegionBytes));
                    writer.GetMemory(RegionBytes);
                    writer.Advance(RegionBytes);
                    var lost = region.Disarm();
                    if (lost != 0)
                    {
                        // The guard, as a caller must apply it: never let the scratch bytes out.
                        context.Abort();
                    }
                    missing.TrySetResult(lost);
                }
                catch (Exception e)
                {
                    missing.TrySetException(e);
                }
                await pending;
            }));
        using var cts = new CancellationTokenSource(WaitLimit);
        using var client = await RawHttpClient.ConnectAsync(host.BaseAddress, cts.Token, receiveBufferSize: 4096);

        await client.SendAsync(Get("/misused"), cts.Token);
        Assert.Equal(RegionBytes, await missing.Task.WaitAsync(WaitLimit));
        var (received, _) = await client.ReadToEndAsync(cts.Token, maxBytes: 2 * PipeBytes);

        // The abort resets the connection, and a reset may discard what the client had not read yet, head included.
        var text = Encoding.Latin1.GetString(received);
        var headEnd = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        var body = headEnd < 0 ? [] : received.AsSpan(headEnd + 4);
        // Cut short by the abort, and nothing but the pipe's own bytes.
        Assert.True(body.Length < PipeBytes + RegionBytes, $"{body.Length} body bytes arrived");
        Assert.Equal(-1, body.IndexOfAnyExcept((byte)'p'));
    }

    [Theory]
    [InlineData(KestrelHost.Epoll)]
    [InlineData(KestrelHost.EpollInline)]
    public async Task ARegionLargerThanTheSocketBufferFinishesOnEpollOut(string transport)
    {
        // 16 MiB: more than a TCP send buffer grows to (tcp_wmem's default maximum is 4 MiB), so sendfile meets EAGAIN
        // mid-region and the rest goes out on EPOLLOUT edges.
        var file = WriteFile(16 * 1024 * 1024);
        await using var host = await StartAsync(transport);
        using var client = new HttpClient { BaseAddress = host.BaseAddress, Timeout = WaitLimit };

        var body = await client.GetByteArrayAsync($"file/{Path.GetFileName(file)}").WaitAsync(WaitLimit);

        Assert.Equal(SHA256.HashData(File.ReadAllBytes(file)), SHA256.HashData(body));
        Assert.True(Counter(host, "epoll.reactor.write_would_block") > 0, "the socket buffer never filled");
        Assert.Equal(["region"], _taken);
    }

    [Fact]
    public async Task AClientResetMidRegionClosesTheConnectionAndReleasesTheFile()
    {
        var file = WriteFile(16 * 1024 * 1024);
        var aborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var host = await StartAsync(KestrelHost.Epoll, endpoint => endpoint.Protocols = HttpProtocols.Http1, app =>
        {
            Map(app);
            app.MapGet("/held/{name}", async context =>
            {
                var path = Path.Combine(_folder, (string)context.Request.RouteValues["name"]!);
                var handle = File.OpenHandle(path);
                var length = RandomAccess.GetLength(handle);
                context.Response.ContentLength = length;
                await context.Response.StartAsync();
                var region = context.Features.Get<IEpollFileRegionFeature>()!;
                Assert.True(region.TryArm(handle, 0, length));
                for (var left = length; left > 0;)
                {
                    var step = (int)Math.Min(left, context.Response.BodyWriter.GetMemory(1024 * 1024).Length);
                    context.Response.BodyWriter.Advance(step);
                    left -= step;
                }
                Assert.Equal(0, region.Disarm());
                await context.Response.BodyWriter.FlushAsync();
                // From here only the transport's region holds the file open.
                handle.Dispose();
                // The transport drops its regions when it closes the connection, before its ConnectionClosed fires.
                context.Features.Get<Microsoft.AspNetCore.Connections.Features.IConnectionLifetimeFeature>()!
                    .ConnectionClosed.Register(() => aborted.TrySetResult());
            });
        });
        using var cts = new CancellationTokenSource(WaitLimit);
        using (var client = await RawHttpClient.ConnectAsync(host.BaseAddress, cts.Token, receiveBufferSize: 64 * 1024))
        {
            await client.SendAsync(Get($"/held/{Path.GetFileName(file)}"), cts.Token);
            await client.ReadHeadAsync(cts.Token);
            await client.DiscardAsync(256 * 1024, cts.Token);
            client.Reset();
        }

        await aborted.Task.WaitAsync(WaitLimit);
        Assert.Equal(0, OpenFds(file));
        // The server goes on serving.
        using var next = new HttpClient { BaseAddress = host.BaseAddress, Timeout = WaitLimit };
        Assert.Equal("alive", await next.GetStringAsync("text/alive").WaitAsync(WaitLimit));
    }

    [Theory]
    [InlineData(KestrelHost.Epoll)]
    [InlineData(KestrelHost.EpollInline)]
    public async Task ARegionArmedAfterTheSenderWentIdleIsStillSent(string transport)
    {
        // The head is sent and the sender is back to waiting for the pipe before the region is queued; the flush
        // that follows adds no pipe byte, and a pipe does not wake its reader for an empty flush.
        var file = WriteFile(200_000);
        var headSeen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var host = await StartAsync(transport, endpoint => endpoint.Protocols = HttpProtocols.Http1, app =>
            app.MapGet("/late", async context =>
            {
                using var handle = File.OpenHandle(file);
                var length = RandomAccess.GetLength(handle);
                context.Response.ContentLength = length;
                await context.Response.StartAsync();
                // StartAsync leaves the head in the pipe; this flush sends it.
                await context.Response.BodyWriter.FlushAsync();
                await headSeen.Task.WaitAsync(WaitLimit);
                var region = context.Features.Get<IEpollFileRegionFeature>()!;
                Assert.True(region.TryArm(handle, 0, length));
                var writer = context.Response.BodyWriter;
                writer.GetMemory((int)length);
                writer.Advance((int)length);
                Assert.Equal(0, region.Disarm());
                await writer.FlushAsync();
            }));
        using var cts = new CancellationTokenSource(WaitLimit);
        using var client = await RawHttpClient.ConnectAsync(host.BaseAddress, cts.Token);

        await client.SendAsync(Get("/late"), cts.Token);
        var head = await client.ReadHeadAsync(cts.Token);
        headSeen.SetResult();
        var body = await client.ReadBodyAsync(200_000, cts.Token);

        Assert.Equal(200, head.StatusCode);
        Assert.True(File.ReadAllBytes(file).AsSpan().SequenceEqual(body));
    }

    /// <summary>How many of this process's fds name <paramref name="path"/>.</summary>
    internal static int OpenFds(string path)
    {
        var count = 0;
        foreach (var fd in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
        {
            try
            {
                if (new FileInfo(fd).LinkTarget == path)
                {
                    count++;
                }
            }
            catch (IOException)
            {
                // Closed while listed.
            }
        }
        return count;
    }

    internal static string Get(string path) => $"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n";

    private static void AssertBody(RawResponse response, byte[] expected, string path)
    {
        Assert.Equal(200, response.StatusCode);
        Assert.Equal(path, response.Headers[PathHeader]);
        Assert.Equal(SHA256.HashData(expected), SHA256.HashData(response.Body));
    }

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
        app.MapGet("/text/{word}", (string word) => Results.Text(word));
        app.MapGet("/file/{name}", async context =>
        {
            var path = Path.Combine(_folder, (string)context.Request.RouteValues["name"]!);
            var extra = long.Parse(context.Request.Query["extra"].FirstOrDefault() ?? "0", CultureInfo.InvariantCulture);
            using var file = File.OpenHandle(path);
            var length = RandomAccess.GetLength(file) + extra;
            context.Response.ContentLength = length;
            var region = context.Features.Get<IEpollFileRegionFeature>();
            // Tried whatever the protocol: refusing what it cannot send (TLS, HTTP/2) is the transport's part under test.
            var zeroCopy = region is not null;
            context.Response.Headers[PathHeader] = zeroCopy ? "region" : "copy";
            await context.Response.StartAsync(context.RequestAborted);
            // Armed only once the head is sent: armed, the head's bytes would be taken for file bytes. So the header
            // says what the endpoint tries, and _taken what the transport let it do.
            zeroCopy = zeroCopy && region!.TryArm(file, 0, length, pagesReady: context.Request.Query.ContainsKey("ready"));
            _taken.Enqueue(zeroCopy ? "region" : "copy");
            if (zeroCopy)
            {
                var writer = context.Response.BodyWriter;
                for (var left = length; left > 0;)
                {
                    var memory = writer.GetMemory((int)Math.Min(left, 1024 * 1024));
                    var step = (int)Math.Min(left, memory.Length);
                    writer.Advance(step);
                    left -= step;
                }
                Assert.Equal(0, region!.Disarm());
                await writer.FlushAsync(context.RequestAborted);
                return;
            }
            await context.Response.SendFileAsync(path, context.RequestAborted);
        });
    }

    /// <summary>The server's sendfile bytes so far, from its own meter.</summary>
    private static long SendfileBytes(KestrelHost host) => Counter(host, "epoll.connection.sendfile.bytes");

    /// <summary>A counter of the server's own meter, summed over its reactors.</summary>
    internal static long Counter(KestrelHost host, string name)
    {
        var factory = host.Services.GetRequiredService<IMeterFactory>();
        long bytes = 0;
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Scope == factory && instrument.Name == name)
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) => bytes += value);
        listener.Start();
        listener.RecordObservableInstruments();
        return bytes;
    }
}
