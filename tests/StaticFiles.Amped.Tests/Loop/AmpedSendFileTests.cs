using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.ResponseCompression;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using StaticFiles.Amped;

namespace StaticFiles.Amped.Tests.Loop;

/// <summary>
/// Zero copy on the epoll transport: files above <see cref="AmpedStaticFileOptions.MaxCachedFileSize"/> go to the
/// transport as file regions and leave by sendfile, with every byte exact (whole, single and multipart ranges, HEAD,
/// keep-alive), while the responses whose bytes would not reach the socket unchanged (HTTP/2, a compressed body) are
/// copied and their fallback counted.
/// </summary>
public sealed class AmpedSendFileTests : IDisposable
{
    private const int Size = 3 * 1024 * 1024 + 17;
    private readonly string _root = Directory.CreateTempSubdirectory("amped-sendfile-").FullName;
    private readonly byte[] _content = RandomNumberGenerator.GetBytes(Size);

    public AmpedSendFileTests() => File.WriteAllBytes(Path.Combine(_root, "big.bin"), _content);

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private AmpedStaticFileOptions Options => new() { RootPath = _root, ServeUnknownFileTypes = true, MaxCachedFileSize = 64 * 1024 };

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task LargeFilesLeaveBySendfileByteExactWholeAndInRanges(bool inline)
    {
        await using var host = await KestrelHost.StartAsync(inline ? KestrelHost.EpollInline : KestrelHost.Epoll,
            app => app.UseAmpedStaticFiles(Options), reactorCount: 1);
        using var client = new HttpClient { BaseAddress = host.BaseAddress, Timeout = WaitLimit };

        Assert.True(Same(0, Size, await client.GetByteArrayAsync("/big.bin").WaitAsync(WaitLimit)));

        using (var single = new HttpRequestMessage(HttpMethod.Get, "/big.bin") { Headers = { Range = new RangeHeaderValue(1_000_000, 2_500_000) } })
        using (var response = await client.SendAsync(single).WaitAsync(WaitLimit))
        {
            Assert.Equal(HttpStatusCode.PartialContent, response.StatusCode);
            Assert.True(Same(1_000_000, 1_500_001, await response.Content.ReadAsByteArrayAsync().WaitAsync(WaitLimit)));
        }

        var multi = new RangeHeaderValue();
        multi.Ranges.Add(new RangeItemHeaderValue(0, 99));
        multi.Ranges.Add(new RangeItemHeaderValue(2_000_000, 2_999_999));
        using (var request = new HttpRequestMessage(HttpMethod.Get, "/big.bin") { Headers = { Range = multi } })
        using (var response = await client.SendAsync(request).WaitAsync(WaitLimit))
        {
            Assert.Equal(HttpStatusCode.PartialContent, response.StatusCode);
            var body = await response.Content.ReadAsByteArrayAsync().WaitAsync(WaitLimit);
            var parts = MultipartParts(body, response.Content.Headers.ContentType!.Parameters.Single(p => p.Name == "boundary").Value!.Trim('"'));
            Assert.Equal(2, parts.Count);
            Assert.True(_content.AsSpan(0, 100).SequenceEqual(parts[0]));
            Assert.True(_content.AsSpan(2_000_000, 1_000_000).SequenceEqual(parts[1]));
        }

        using (var head = new HttpRequestMessage(HttpMethod.Head, "/big.bin"))
        using (var response = await client.SendAsync(head).WaitAsync(WaitLimit))
        {
            Assert.Equal(Size, response.Content.Headers.ContentLength);
            Assert.Empty(await response.Content.ReadAsByteArrayAsync().WaitAsync(WaitLimit));
        }

        // A request after the file responses on the same kept-alive connection, so that every region's sendfile has
        // been counted before the counters are read (the reactor counts after the call, which the client can outrun).
        Assert.True(Same(0, Size, await client.GetByteArrayAsync("/big.bin").WaitAsync(WaitLimit)));
        var counters = Counters(host);
        // The whole file twice, one range, the large part of the multipart response: four regions, none for HEAD; the
        // 100-byte part is below the smallest region and copied.
        Assert.Equal(4, counters.GetValueOrDefault("amped.sendfile.bodies"));
        Assert.Equal(2L * Size + 1_500_001 + 1_000_000, counters.GetValueOrDefault("amped.body.bytes/sendfile"));
        Assert.Equal(100, counters.GetValueOrDefault("amped.body.bytes/copy"));
        Assert.True(counters.GetValueOrDefault("epoll.connection.sendfile.bytes") >= 2L * Size + 1_500_001 + 1_000_000);
        Assert.Empty(host.LoggedErrors);
    }

    [Fact]
    public async Task AFileWhoseBytesAreCachedInMemoryStillLeavesBySendfile()
    {
        var mid = RandomNumberGenerator.GetBytes(40 * 1024);
        File.WriteAllBytes(Path.Combine(_root, "mid.bin"), mid);
        await using var host = await KestrelHost.StartAsync(KestrelHost.Epoll,
            app => app.UseAmpedStaticFiles(new AmpedStaticFileOptions { RootPath = _root, ServeUnknownFileTypes = true }));
        using var client = new HttpClient { BaseAddress = host.BaseAddress, Timeout = WaitLimit };

        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(mid, await client.GetByteArrayAsync("/mid.bin").WaitAsync(WaitLimit));
        }
        // Below MaxCachedFileSize, but above the smallest region: no copy, from memory or otherwise.
        var counters = Counters(host);
        Assert.Equal(3, counters.GetValueOrDefault("amped.sendfile.bodies"));
        Assert.Equal(0, counters.GetValueOrDefault("amped.content_cache.hits"));
        Assert.Equal(0, counters.GetValueOrDefault("amped.body.bytes/copy"));
    }

    [Fact]
    public async Task Http2IsCopiedAndCountsItsFallback()
    {
        await using var host = await KestrelHost.StartAsync(KestrelHost.Epoll, app => app.UseAmpedStaticFiles(Options),
            endpoint: e => e.Protocols = HttpProtocols.Http2);
        using var client = new HttpClient { BaseAddress = host.BaseAddress, Timeout = WaitLimit, DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };

        Assert.True(Same(0, Size, await client.GetByteArrayAsync("/big.bin").WaitAsync(WaitLimit)));

        var counters = Counters(host);
        Assert.Equal(0, counters.GetValueOrDefault("amped.sendfile.bodies"));
        Assert.Equal(1, counters.GetValueOrDefault("amped.sendfile.fallbacks/protocol"));
        Assert.Equal(Size, counters.GetValueOrDefault("amped.body.bytes/copy"));
        Assert.Equal(0, counters.GetValueOrDefault("epoll.connection.sendfile.bytes"));
    }

    [Fact]
    public async Task ACompressedBodyIsCopiedAndCountsItsFallback()
    {
        await using var host = await KestrelHost.StartAsync(KestrelHost.Epoll, app =>
        {
            app.UseResponseCompression();
            app.UseAmpedStaticFiles(Options);
        }, services: s => s.AddResponseCompression(o =>
        {
            o.MimeTypes = ["application/octet-stream"];
            o.Providers.Add<GzipCompressionProvider>();
        }));
        using var handler = new SocketsHttpHandler { AutomaticDecompression = DecompressionMethods.GZip };
        using var client = new HttpClient(handler) { BaseAddress = host.BaseAddress, Timeout = WaitLimit };

        Assert.True(Same(0, Size, await client.GetByteArrayAsync("/big.bin").WaitAsync(WaitLimit)));

        var counters = Counters(host);
        Assert.Equal(0, counters.GetValueOrDefault("amped.sendfile.bodies"));
        Assert.Equal(1, counters.GetValueOrDefault("amped.sendfile.fallbacks/body_replaced"));
    }

    private bool Same(int offset, int length, byte[] actual) => _content.AsSpan(offset, length).SequenceEqual(actual);

    /// <summary>The server's own counters: name, or name/tag value for those with a path or reason tag.</summary>
    private static Dictionary<string, long> Counters(KestrelHost host)
    {
        var factory = host.Services.GetRequiredService<IMeterFactory>();
        var totals = new Dictionary<string, long>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Scope == factory)
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            var name = instrument.Name;
            foreach (var tag in tags)
            {
                if (tag.Key is "amped.body.path" or "amped.reason")
                {
                    name += "/" + tag.Value;
                }
            }
            totals[name] = totals.GetValueOrDefault(name) + value;
        });
        listener.Start();
        listener.RecordObservableInstruments();
        return totals;
    }

    /// <summary>The bodies of a multipart/byteranges payload.</summary>
    private static List<byte[]> MultipartParts(byte[] body, string boundary)
    {
        var parts = new List<byte[]>();
        var text = System.Text.Encoding.Latin1.GetString(body);
        var delimiter = "--" + boundary;
        var at = text.IndexOf(delimiter, StringComparison.Ordinal);
        while (at >= 0)
        {
            var headEnd = text.IndexOf("\r\n\r\n", at, StringComparison.Ordinal);
            var next = text.IndexOf("\r\n" + delimiter, headEnd < 0 ? at : headEnd, StringComparison.Ordinal);
            if (headEnd < 0 || next < 0)
            {
                break;
            }
            parts.Add(body[(headEnd + 4)..next]);
            at = next + 2;
        }
        return parts;
    }
}
