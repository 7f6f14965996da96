using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Xunit.Abstractions;

namespace EpollTransport.Tests.Protocols;

/// <summary>
/// A file truncated while its region is still being sent: once the region reaches the new end of file, sendfile
/// returns 0 and the response's Content-Length can no longer be kept. The transport must abort the connection (not
/// wait forever for bytes that will never come), release the file, and go on serving.
/// </summary>
public sealed class FileRegionTruncationTests(ITestOutputHelper output) : ProtocolTestBase(output), IDisposable
{
    private const int FileBytes = 16 * 1024 * 1024;
    private const int ReadBeforeTruncation = 1024 * 1024;

    // On a 2 MiB boundary: no page-cache folio (at most 2 MiB, naturally aligned) straddles the cut, so truncation
    // zeroes no page that bytes already queued on the socket may still refer to.
    private const int TruncatedBytes = 2 * 1024 * 1024;

    private readonly string _folder = Directory.CreateTempSubdirectory("epoll-file-region-truncation-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Theory]
    [InlineData(KestrelHost.Epoll)]
    [InlineData(KestrelHost.EpollInline)]
    public async Task AFileTruncatedMidRegionAbortsTheConnectionAndReleasesTheFile(string transport)
    {
        var original = Payload(FileBytes);
        var file = Path.Combine(_folder, "shrinking.bin");
        await File.WriteAllBytesAsync(file, original);
        var handedOver = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var host = await StartAsync(transport, endpoint => endpoint.Protocols = HttpProtocols.Http1, app =>
        {
            app.MapGet("/text/{word}", (string word) => Results.Text(word));
            app.MapGet("/whole", async context =>
            {
                // Registered first: whenever the connection ends, this sees it.
                context.Features.Get<IConnectionLifetimeFeature>()!.ConnectionClosed.Register(() => closed.TrySetResult());
                try
                {
                    using (var handle = File.OpenHandle(file))
                    {
                        context.Response.ContentLength = FileBytes;
                        await context.Response.StartAsync();
                        var region = context.Features.Get<IEpollFileRegionFeature>()!;
                        Assert.True(region.TryArm(handle, 0, FileBytes));
                        var writer = context.Response.BodyWriter;
                        for (var left = FileBytes; left > 0;)
                        {
                            var step = Math.Min(left, writer.GetMemory(1024 * 1024).Length);
                            writer.Advance(step);
                            left -= step;
                        }
                        Assert.Equal(0, region.Disarm());
                    }
                    // From here only the transport's regions hold the file open.
                    handedOver.TrySetResult();
                }
                catch (Exception e)
                {
                    handedOver.TrySetException(e);
                    throw;
                }
                await context.Response.BodyWriter.FlushAsync();
            });
        });
        using var cts = new CancellationTokenSource(WaitLimit);
        using var client = await RawHttpClient.ConnectAsync(host.BaseAddress, cts.Token, receiveBufferSize: 64 * 1024, bufferSize: 64 * 1024);

        await client.SendAsync(FileRegionTests.Get("/whole"), cts.Token);
        await handedOver.Task.WaitAsync(WaitLimit);
        var head = await client.ReadHeadAsync(cts.Token);
        Assert.Equal(200, head.StatusCode);
        Assert.Equal(FileBytes.ToString(System.Globalization.CultureInfo.InvariantCulture), head.Headers["Content-Length"]);
        var first = await client.ReadBodyAsync(ReadBeforeTruncation, cts.Token);

        // The client reads no more, so the server has at most this much plus the two socket buffers (a few MiB) out
        // of the file, and is stalled on EAGAIN. The transport still holding the file proves the region is unfinished:
        // it drops its reference as the region's last byte leaves.
        Assert.True(FileRegionTests.OpenFds(file) == 1, "the region was sent whole before the file was truncated");
        using (var shrink = File.OpenHandle(file, FileMode.Open, FileAccess.Write))
        {
            RandomAccess.SetLength(shrink, TruncatedBytes);
        }

        // Reading on drains the socket, the reactor's next sendfile finds the end of file, and the connection must
        // end: by a reset, which may discard what the client had not read yet, or by FIN. A hang fails on cts.
        var (rest, _) = await client.ReadToEndAsync(cts.Token, maxBytes: FileBytes);

        var body = new byte[first.Length + rest.Length];
        first.CopyTo(body, 0);
        rest.CopyTo(body, first.Length);
        Assert.True(body.Length < FileBytes, $"{body.Length} body bytes arrived for a file cut to {TruncatedBytes}");
        // Whatever arrived is the file's own bytes, at their offsets: no scratch bytes, no zeros.
        Assert.True(body.AsSpan().SequenceEqual(original.AsSpan(0, body.Length)), "a body byte differs from the file's");

        // The transport drops its regions when it closes the connection, before its ConnectionClosed fires.
        await closed.Task.WaitAsync(WaitLimit);
        Assert.Equal(0, FileRegionTests.OpenFds(file));
        // The server goes on serving.
        using var next = new HttpClient { BaseAddress = host.BaseAddress, Timeout = WaitLimit };
        Assert.Equal("alive", await next.GetStringAsync("text/alive").WaitAsync(WaitLimit));
    }
}
