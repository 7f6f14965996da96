using Microsoft.Extensions.Primitives;
using StaticFiles.Amped.Http;

namespace StaticFiles.Amped.Tests.Http;

public sealed class ContentCodingSelectorTests
{
    [Theory]
    [InlineData("gzip, br", "br")]
    [InlineData("br, gzip", "br")]
    [InlineData("gzip", "gzip")]
    [InlineData("br", "br")]
    [InlineData("deflate", null)]
    [InlineData("gzip;q=1, br;q=0.5", "gzip")]
    [InlineData("gzip;q=0.5, br;q=0.5", "br")]
    [InlineData("br;q=0, gzip", "gzip")]
    [InlineData("br;q=0, gzip;q=0", null)]
    [InlineData("GZIP", "gzip")]
    [InlineData("Br;Q=0.2, x-gzip;q=0.1", "br")]
    [InlineData("x-gzip", "gzip")]
    public void HighestWeightWinsAndTiesPreferBrotli(string acceptEncoding, string? expected)
    {
        Assert.Equal(expected, ContentCodingSelector.Select(acceptEncoding, hasBrotli: true, hasGzip: true));
    }

    [Theory]
    [InlineData("*", "br")]
    [InlineData("*;q=0.5, gzip", "gzip")]
    [InlineData("*, br;q=0", "gzip")]
    [InlineData("*;q=0", null)]
    [InlineData("*;q=0, gzip;q=0.1", "gzip")]
    [InlineData("*;q=0.5, identity;q=0.1", "br")]
    [InlineData("gzip;q=0.5, *;q=0.8", "br")]
    public void StarCoversCodingsNotListed(string acceptEncoding, string? expected)
    {
        Assert.Equal(expected, ContentCodingSelector.Select(acceptEncoding, hasBrotli: true, hasGzip: true));
    }

    [Theory]
    [InlineData("identity;q=1, gzip;q=0.5", null)]
    [InlineData("identity, gzip", "gzip")]
    [InlineData("identity;q=0, gzip;q=0.5", "gzip")]
    [InlineData("gzip;q=0.5, *;q=0.8", null)]
    public void IdentityWinsOnlyWithAHigherWeight(string acceptEncoding, string? expected)
    {
        Assert.Equal(expected, ContentCodingSelector.Select(acceptEncoding, hasBrotli: false, hasGzip: true));
    }

    [Theory]
    [InlineData("gzip;q=abc, br", "br")]
    [InlineData("br;q=2, gzip", "gzip")]
    [InlineData("br;foo=bar, gzip", "gzip")]
    [InlineData("gzip;q=abc", null)]
    [InlineData("gzip,,br", "br")]
    [InlineData(", gzip", "gzip")]
    public void MalformedEntriesAreSkipped(string acceptEncoding, string? expected)
    {
        Assert.Equal(expected, ContentCodingSelector.Select(acceptEncoding, hasBrotli: true, hasGzip: true));
    }

    [Theory]
    [InlineData("br, gzip", false, true, "gzip")]
    [InlineData("br, gzip", true, false, "br")]
    [InlineData("br", false, true, null)]
    [InlineData("gzip", true, false, null)]
    [InlineData("br, gzip", false, false, null)]
    public void OnlyExistingSiblingsAreChosen(string acceptEncoding, bool hasBrotli, bool hasGzip, string? expected)
    {
        Assert.Equal(expected, ContentCodingSelector.Select(acceptEncoding, hasBrotli, hasGzip));
    }

    [Fact]
    public void NoOrEmptyHeaderMeansIdentity()
    {
        Assert.Null(ContentCodingSelector.Select(StringValues.Empty, hasBrotli: true, hasGzip: true));
        Assert.Null(ContentCodingSelector.Select("", hasBrotli: true, hasGzip: true));
    }

    [Fact]
    public void EveryFieldLineCounts()
    {
        var lines = new StringValues(["gzip;q=0.5", "br;q=0.8"]);

        Assert.Equal("br", ContentCodingSelector.Select(lines, hasBrotli: true, hasGzip: true));
    }
}
