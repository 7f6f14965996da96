using System.Globalization;
using System.Net;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;

namespace StaticFiles.Amped.Tests.Middleware;

/// <summary>Range requests on <c>big.bin</c> (3 MiB): single ranges, multipart, 416, If-Range, and when Range is ignored.</summary>
public sealed class RangeTests : SiteTests
{
    private const string Big = "/big.bin";
    private const long Length = StaticSite.BigLength;

    public static TheoryData<AmpedMode, string, long, long> SingleRanges
    {
        get
        {
            var data = new TheoryData<AmpedMode, string, long, long>();
            foreach (var mode in new[] { AmpedMode.Amped, AmpedMode.Sped })
            {
                data.Add(mode, "bytes=0-99", 0, 99);
                data.Add(mode, "bytes=-100", Length - 100, Length - 1);
                data.Add(mode, "bytes=3145000-", 3145000, Length - 1);
                // Across the middleware's 64 KiB read chunks.
                data.Add(mode, "bytes=65000-200000", 65000, 200000);
                // The last byte; a last-pos past the end is clipped; a suffix longer than the file is all of it.
                data.Add(mode, "bytes=3145727-", Length - 1, Length - 1);
                data.Add(mode, "bytes=3145700-9999999", 3145700, Length - 1);
                data.Add(mode, "bytes=-9999999", 0, Length - 1);
                // Touching ranges are coalesced into one.
                data.Add(mode, "bytes=0-9,10-19", 0, 19);
                data.Add(mode, "BYTES=5-5", 5, 5);
            }
            return data;
        }
    }

    public static TheoryData<AmpedMode, string> IgnoredRanges
    {
        get
        {
            var data = new TheoryData<AmpedMode, string>();
            foreach (var mode in new[] { AmpedMode.Amped, AmpedMode.Sped })
            {
                data.Add(mode, "bytes=abc");
                data.Add(mode, "items=0-9");
                data.Add(mode, "bytes=9-0");
                // Overlap that asks for more than the file: served whole rather than many times over.
                data.Add(mode, "bytes=0-,0-");
            }
            return data;
        }
    }


    private static string Bytes(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static byte[] Slice(long first, long last) => StaticSite.Big.AsSpan((int)first, (int)(last - first + 1)).ToArray();

    private static async Task AssertWholeFileAsync(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Null(response.Header("Content-Range"));
        Assert.Equal(Length, response.Content.Headers.ContentLength);
        var body = await response.BodyAsync();
        Assert.True(StaticSite.Big.AsSpan().SequenceEqual(body), "the whole file differs");
    }

    [Theory]
    [MemberData(nameof(SingleRanges))]
    public async Task ASingleRangeIsPartialContent(AmpedMode mode, string range, long first, long last)
    {
        var server = await Site.StartAsync(mode);

        using var response = await server.GetAsync(Big, ("Range", range));

        Assert.Equal(HttpStatusCode.PartialContent, response.StatusCode);
        Assert.Equal($"bytes {Bytes(first)}-{Bytes(last)}/{Bytes(Length)}", response.Header("Content-Range"));
        Assert.Equal(last - first + 1, response.Content.Headers.ContentLength);
        Assert.Equal("application/octet-stream", response.Header("Content-Type"));
        Assert.NotNull(response.Headers.ETag);
        Assert.Equal("bytes", response.Header("Accept-Ranges"));
        Assert.Equal(Slice(first, last), await response.BodyAsync());
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task SeveralRangesAreMultipartByteranges(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);

        using var response = await server.GetAsync(Big, ("Range", "bytes=0-9,100-109,-5"));

        Assert.Equal(HttpStatusCode.PartialContent, response.StatusCode);
        Assert.Null(response.Header("Content-Range"));
        var contentType = MediaTypeHeaderValue.Parse(response.Header("Content-Type"));
        Assert.Equal("multipart/byteranges", contentType.MediaType.Value);
        var boundary = HeaderUtilities.RemoveQuotes(contentType.Boundary).Value;
        Assert.False(string.IsNullOrEmpty(boundary));
        var body = await response.BodyAsync();
        Assert.Equal(body.Length, response.Content.Headers.ContentLength);

        var reader = new MultipartReader(boundary, new MemoryStream(body));
        var expected = new[] { (0L, 9L), (100L, 109L), (Length - 5, Length - 1) };
        foreach (var (first, last) in expected)
        {
            var section = await reader.ReadNextSectionAsync();
            Assert.NotNull(section);
            Assert.Equal("application/octet-stream", section.ContentType);
            Assert.Equal($"bytes {Bytes(first)}-{Bytes(last)}/{Bytes(Length)}", section.Headers!["Content-Range"].ToString());
            using var part = new MemoryStream();
            await section.Body.CopyToAsync(part);
            Assert.Equal(Slice(first, last), part.ToArray());
        }
        Assert.Null(await reader.ReadNextSectionAsync());
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task MoreRangesThanMaxRangesAreServedWhole(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode, o => o.MaxRanges = 2);

        using var three = await server.GetAsync(Big, ("Range", "bytes=0-0,10-10,20-20"));
        using var two = await server.GetAsync(Big, ("Range", "bytes=0-0,10-10"));

        await AssertWholeFileAsync(three);
        Assert.Equal(HttpStatusCode.PartialContent, two.StatusCode);
        Assert.StartsWith("multipart/byteranges", two.Header("Content-Type"), StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task ARangePastTheEndIsNotSatisfiable(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);

        using var far = await server.GetAsync(Big, ("Range", "bytes=9999999-"));
        using var atEnd = await server.GetAsync(Big, ("Range", "bytes=3145728-3145800"));
        using var zeroSuffix = await server.GetAsync(Big, ("Range", "bytes=-0"));

        foreach (var response in new[] { far, atEnd, zeroSuffix })
        {
            Assert.Equal(HttpStatusCode.RequestedRangeNotSatisfiable, response.StatusCode);
            Assert.False(response.FellThrough());
            Assert.Equal($"bytes */{Bytes(Length)}", response.Header("Content-Range"));
            Assert.Empty(await response.BodyAsync());
        }
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task ASatisfiableRangeAmongUnsatisfiableOnesIsServed(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);

        using var response = await server.GetAsync(Big, ("Range", "bytes=9999999-,0-4"));

        Assert.Equal(HttpStatusCode.PartialContent, response.StatusCode);
        Assert.Equal($"bytes 0-4/{Bytes(Length)}", response.Header("Content-Range"));
        Assert.Equal(Slice(0, 4), await response.BodyAsync());
    }

    [Theory]
    [MemberData(nameof(IgnoredRanges))]
    public async Task ARangeThatCannotBeUsedIsIgnored(AmpedMode mode, string range)
    {
        var server = await Site.StartAsync(mode);

        using var response = await server.GetAsync(Big, ("Range", range));

        await AssertWholeFileAsync(response);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task IfRangeWithTheCurrentETagIsPartial(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);
        using var head = await server.HeadAsync(Big);
        var etag = head.Header("ETag")!;

        using var response = await server.GetAsync(Big, ("Range", "bytes=0-99"), ("If-Range", etag));

        Assert.Equal(HttpStatusCode.PartialContent, response.StatusCode);
        Assert.Equal($"bytes 0-99/{Bytes(Length)}", response.Header("Content-Range"));
        Assert.Equal(Slice(0, 99), await response.BodyAsync());
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task IfRangeWithAStaleOrWeakETagIsTheWholeFile(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);
        using var head = await server.HeadAsync(Big);
        var etag = head.Header("ETag")!;

        using var stale = await server.GetAsync(Big, ("Range", "bytes=0-99"), ("If-Range", "\"stale\""));
        using var weak = await server.GetAsync(Big, ("Range", "bytes=0-99"), ("If-Range", "W/" + etag));

        await AssertWholeFileAsync(stale);
        await AssertWholeFileAsync(weak);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task IfRangeWithTheLastModifiedDateIsPartialAndWithAnotherDateWhole(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);
        var lastModified = StaticSite.FixedLastModified.ToString("R", CultureInfo.InvariantCulture);
        var earlier = StaticSite.FixedLastModified.AddSeconds(-1).ToString("R", CultureInfo.InvariantCulture);

        using var current = await server.GetAsync(Big, ("Range", "bytes=10-19"), ("If-Range", lastModified));
        using var old = await server.GetAsync(Big, ("Range", "bytes=10-19"), ("If-Range", earlier));

        Assert.Equal(HttpStatusCode.PartialContent, current.StatusCode);
        Assert.Equal(Slice(10, 19), await current.BodyAsync());
        await AssertWholeFileAsync(old);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task RangeOnHeadIsIgnored(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);

        using var response = await server.HeadAsync(Big, ("Range", "bytes=0-99"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Null(response.Header("Content-Range"));
        Assert.Equal(Length, response.Content.Headers.ContentLength);
        Assert.Empty(await response.BodyAsync());
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task RangeOnAnEmptyFileIsIgnored(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);

        using var response = await server.GetAsync("/empty.txt", ("Range", "bytes=0-0"));
        using var suffix = await server.GetAsync("/empty.txt", ("Range", "bytes=-10"));

        foreach (var r in new[] { response, suffix })
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            Assert.Null(r.Header("Content-Range"));
            Assert.Equal(0, r.Content.Headers.ContentLength);
            Assert.Empty(await r.BodyAsync());
        }
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task PreconditionsComeBeforeRanges(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);
        using var head = await server.HeadAsync(Big);
        var etag = head.Header("ETag")!;

        using var notModified = await server.GetAsync(Big, ("Range", "bytes=0-99"), ("If-None-Match", etag));
        using var failed = await server.GetAsync(Big, ("Range", "bytes=0-99"), ("If-Match", "\"other\""));

        Assert.Equal(HttpStatusCode.NotModified, notModified.StatusCode);
        Assert.Null(notModified.Header("Content-Range"));
        Assert.Empty(await notModified.BodyAsync());
        Assert.Equal(HttpStatusCode.PreconditionFailed, failed.StatusCode);
        Assert.Null(failed.Header("Content-Range"));
    }
}
