using System.Net;

namespace StaticFiles.Amped.Tests.Middleware;

/// <summary>GET serves a file's exact bytes with its headers; HEAD the same headers and no body; other methods fall through.</summary>
public sealed class GetAndHeadTests : SiteTests
{
    public static TheoryData<AmpedMode, string> ModesAndOtherMethods
    {
        get
        {
            var data = new TheoryData<AmpedMode, string>();
            foreach (var mode in new[] { AmpedMode.Amped, AmpedMode.Sped })
            {
                foreach (var method in new[] { "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE" })
                {
                    data.Add(mode, method);
                }
            }
            return data;
        }
    }


    [Theory]
    [MemberData(nameof(Modes))]
    public async Task GetServesTheExactBytesWithTypeLengthValidatorsAndAcceptRanges(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);

        using var response = await server.GetAsync("/css/site.css");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.False(response.FellThrough());
        Assert.Equal(StaticSite.SiteCss, await response.BodyAsync());
        Assert.Equal("text/css", response.Header("Content-Type"));
        Assert.Equal(StaticSite.SiteCss.Length, response.Content.Headers.ContentLength);
        var etag = response.Headers.ETag;
        Assert.NotNull(etag);
        Assert.False(etag.IsWeak);
        Assert.StartsWith("\"", response.Header("ETag"), StringComparison.Ordinal);
        Assert.Equal(StaticSite.FixedLastModified, response.Content.Headers.LastModified);
        Assert.Equal("Thu, 04 Mar 2021 05:06:07 GMT", response.Header("Last-Modified"));
        Assert.Equal("bytes", response.Header("Accept-Ranges"));
        // Caching is opt-in.
        Assert.Null(response.Header("Cache-Control"));
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task AMissingFileFallsThrough(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);

        using var missing = await server.GetAsync("/css/missing.css");
        using var missingFolder = await server.GetAsync("/nope/site.css");

        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.True(missing.FellThrough());
        Assert.Null(missing.Headers.ETag);
        Assert.Equal(HttpStatusCode.NotFound, missingFolder.StatusCode);
        Assert.True(missingFolder.FellThrough());
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task EachFileHasItsOwnETagAndItIsStable(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);

        using var css1 = await server.GetAsync("/css/site.css");
        using var css2 = await server.GetAsync("/css/site.css");
        using var js = await server.GetAsync("/js/app.js");

        Assert.Equal(css1.Header("ETag"), css2.Header("ETag"));
        Assert.NotEqual(css1.Header("ETag"), js.Header("ETag"));
        Assert.Equal(StaticSite.AppJs, await js.BodyAsync());
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task ABigFileIsServedByteExact(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);

        using var response = await server.GetAsync("/big.bin");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(StaticSite.BigLength, response.Content.Headers.ContentLength);
        Assert.Equal("application/octet-stream", response.Header("Content-Type"));
        var body = await response.BodyAsync();
        Assert.Equal(StaticSite.BigLength, body.Length);
        Assert.True(StaticSite.Big.AsSpan().SequenceEqual(body), "big.bin differs from what is on disk");
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task ABinaryFileIsServedByteExact(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);

        using var response = await server.GetAsync("/img/logo.png");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("image/png", response.Header("Content-Type"));
        Assert.Equal(StaticSite.LogoPng, await response.BodyAsync());
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task NamesWithSpacesAndNonAsciiAreServed(AmpedMode mode)
    {
        Site.WriteFile("files/a b/résumé ü.txt", "unicode"u8.ToArray());
        var server = await Site.StartAsync(mode);

        using var response = await server.GetAsync("/files/a%20b/r%C3%A9sum%C3%A9%20%C3%BC.txt");
        using var otherNormalization = await server.GetAsync("/files/a%20b/re%CC%81sum%C3%A9%20%C3%BC.txt");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("unicode"u8.ToArray(), await response.BodyAsync());
        // Names are bytes on Linux: the decomposed spelling of "é" is another name.
        Assert.Equal(HttpStatusCode.NotFound, otherNormalization.StatusCode);
        Assert.True(otherNormalization.FellThrough());
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task AnEmptyFileIsServedWithLengthZero(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);

        using var response = await server.GetAsync("/empty.txt");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.False(response.FellThrough());
        Assert.Equal(0, response.Content.Headers.ContentLength);
        Assert.Equal("text/plain", response.Header("Content-Type"));
        Assert.NotNull(response.Headers.ETag);
        Assert.Empty(await response.BodyAsync());
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task HeadSendsTheHeadersOfGetAndNoBody(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);

        using var get = await server.GetAsync("/big.bin");
        using var head = await server.HeadAsync("/big.bin");

        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        Assert.False(head.FellThrough());
        foreach (var name in new[] { "Content-Type", "Content-Length", "ETag", "Last-Modified", "Accept-Ranges" })
        {
            Assert.NotNull(get.Header(name));
            Assert.Equal(get.Header(name), head.Header(name));
        }
        Assert.Equal(StaticSite.BigLength.ToString(System.Globalization.CultureInfo.InvariantCulture), head.Header("Content-Length"));
        Assert.Empty(await head.BodyAsync());
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task HeadOfAMissingFileFallsThrough(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);

        using var head = await server.HeadAsync("/missing.bin");

        Assert.Equal(HttpStatusCode.NotFound, head.StatusCode);
        Assert.True(head.FellThrough());
    }

    [Theory]
    [MemberData(nameof(ModesAndOtherMethods))]
    public async Task OtherMethodsFallThrough(AmpedMode mode, string method)
    {
        var server = await Site.StartAsync(mode);

        using var response = await server.SendAsync(method, "/css/site.css");
        using var root = await server.SendAsync(method, "/");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.True(response.FellThrough());
        Assert.Null(response.Headers.ETag);
        Assert.Null(response.Header("Accept-Ranges"));
        Assert.Empty(await response.BodyAsync());
        Assert.Equal(HttpStatusCode.NotFound, root.StatusCode);
        Assert.True(root.FellThrough());
    }
}
