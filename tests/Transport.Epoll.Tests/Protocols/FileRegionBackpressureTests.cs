using System.IO.Pipelines;
using System.Security.Cryptography;
using EpollTransport.Tests.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Xunit.Abstractions;

namespace EpollTransport.Tests.Protocols;

/// <summary>
/// File region bytes count toward <see cref="EpollTransportOptions.MaxWriteBufferSize"/>: the flush after a region
/// larger than the limit waits until the transport has sent all but half the limit of it, as a flush of copied bytes
/// waits for the pipe, and a connection that closes meanwhile ends that wait.
/// </summary>
public sealed class FileRegionBackpressureTests(ITestOutputHelper output) : ProtocolTestBase(output), IDisposable
{
    /// <summary>Far more than the socket buffers on both sides hold (a TCP send buffer grows to 4 MiB by default).</summary>
    private const int FileSize = 32 * 1024 * 1024;

    private readonly string _folder = Directory.CreateTempSubdirectory("epoll-region-backpressure-").FullName;
    private readonly TaskCompletionSource<Task<FlushResult>> _flushing = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Theory]
    [InlineData(KestrelHost.Epoll)]
    [InlineData(KestrelHost.EpollInline)]
    public async Task TheFlushAfterALargeRegionWaitsUntilTheClientHasReadIt(string transport)
    {
        var file = WriteFile();
        await using var host = await StartAsync(transport, e => e.Protocols = HttpProtocols.Http1, app => Map(app, file));
        using var cts = new CancellationTokenSource(WaitLimit);
        using var client = await RawHttpClient.ConnectAsync(host.BaseAddress, cts.Token, receiveBufferSize: 64 * 1024);

        await client.SendAsync("GET /region HTTP/1.1\r\nHost: test\r\n\r\n", cts.Token);
        var head = await client.ReadHeadAsync(cts.Token);
        var flush = await _flushing.Task.WaitAsync(WaitLimit);

        // The client has read nothing of the body: at most the socket buffers' few MiB of the 32 MiB can have left.
        Assert.Equal(200, head.StatusCode);
        Assert.False(flush.IsCompleted, "the flush returned with most of the region unsent");
        var body = await client.ReadBodyAsync(FileSize, cts.Token);
        var result = await flush.WaitAsync(WaitLimit);

        Assert.False(result.IsCompleted || result.IsCanceled);
        Assert.Equal(SHA256.HashData(File.ReadAllBytes(file)), SHA256.HashData(body));
        Assert.Empty(host.LoggedErrors);
    }

    [Theory]
    [InlineData(KestrelHost.Epoll)]
    [InlineData(KestrelHost.EpollInline)]
    public async Task AResetEndsTheWaitingFlush(string transport)
    {
        var file = WriteFile();
        await using var host = await StartAsync(transport, e => e.Protocols = HttpProtocols.Http1, app => Map(app, file));
        using var cts = new CancellationTokenSource(WaitLimit);
        using (var client = await RawHttpClient.ConnectAsync(host.BaseAddress, cts.Token, receiveBufferSize: 64 * 1024))
        {
            await client.SendAsync("GET /region HTTP/1.1\r\nHost: test\r\n\r\n", cts.Token);
            await client.ReadHeadAsync(cts.Token);
            var flush = await _flushing.Task.WaitAsync(WaitLimit);
            Assert.False(flush.IsCompleted, "the flush returned with most of the region unsent");
            client.Reset();
        }

        // The waiting flush ends (the transport reports the output completed; Kestrel, which aborts the request, decides
        // what its caller sees) and the connection closes. Left waiting, the flush would hang the request.
        await (await _flushing.Task).WaitAsync(WaitLimit);
        await _closed.Task.WaitAsync(WaitLimit);
    }

    private void Map(WebApplication app, string file) => app.MapGet("/region", async context =>
    {
        using var handle = File.OpenHandle(file);
        context.Response.ContentLength = FileSize;
        await context.Response.StartAsync();
        context.Features.Get<IConnectionLifetimeFeature>()!.ConnectionClosed.Register(() => _closed.TrySetResult());
        var region = context.Features.Get<IEpollFileRegionFeature>()!;
        Assert.True(region.TryArm(handle, 0, FileSize));
        var writer = context.Response.BodyWriter;
        for (var left = FileSize; left > 0;)
        {
            var step = Math.Min(left, writer.GetMemory(1024 * 1024).Length);
            writer.Advance(step);
            left -= step;
        }
        Assert.Equal(0, region.Disarm());
        var flush = writer.FlushAsync().AsTask();
        _flushing.SetResult(flush);
        await flush;
    });

    private string WriteFile()
    {
        var path = Path.Combine(_folder, "large.bin");
        File.WriteAllBytes(path, Payload(FileSize));
        return path;
    }
}
