using System.Net;

namespace StaticFiles.Amped.Tests.Middleware;

/// <summary>Precompressed siblings (<c>.br</c>, <c>.gz</c>) chosen by Accept-Encoding, with <c>Vary</c>.</summary>
public sealed class PrecompressedTests : SiteTests
{
    private static readonly byte[] Brotli = "brotli bytes of app.js"u8.ToArray();
    private static readonly byte[] Gzip = "gzip bytes of app.js"u8.ToArray();

    public static TheoryData<AmpedMode, string, string?> Choices
    {
        get
        {
            var data = new TheoryData<AmpedMode, string, string?>();
            foreach (var mode in new[] { AmpedMode.Amped, AmpedMode.Sped })
            {
                data.Add(mode, "br, gzip", "br");
                data.Add(mode, "gzip", "gzip");
                data.Add(mode, "gzip;q=1, br;q=0.5", "gzip");
                data.Add(mode, "br;q=0, gzip;q=0", null);
                data.Add(mode, "identity", null);
                data.Add(mode, "", null);
            }
            return data;
        }
    }

    [Theory]
    [MemberData(nameof(Choices))]
    public async Task TheSiblingTheClientPrefersIsServedWithItsEncodingAndVary(AmpedMode mode, string acceptEncoding, string? expected)
    {
        Site.WriteFile("js/app.js.br", Brotli);
        Site.WriteFile("js/app.js.gz", Gzip);
        var server = await Site.StartAsync(mode);

        using var response = acceptEncoding.Length == 0
            ? await server.GetAsync("/js/app.js")
            : await server.GetAsync("/js/app.js", ("Accept-Encoding", acceptEncoding));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("Accept-Encoding", response.Header("Vary"));
        Assert.Equal("text/javascript", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(expected, response.Header("Content-Encoding"));
        var body = expected switch { "br" => Brotli, "gzip" => Gzip, _ => StaticSite.AppJs };
        Assert.Equal(body, await response.BodyAsync());
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task EachEncodingHasItsOwnETag(AmpedMode mode)
    {
        Site.WriteFile("js/app.js.br", Brotli);
        var server = await Site.StartAsync(mode);

        using var plain = await server.GetAsync("/js/app.js");
        using var encoded = await server.GetAsync("/js/app.js", ("Accept-Encoding", "br"));
        using var revalidated = await server.GetAsync("/js/app.js", ("Accept-Encoding", "br"), ("If-None-Match", plain.Header("ETag")!));

        Assert.NotEqual(plain.Header("ETag"), encoded.Header("ETag"));
        Assert.Equal(HttpStatusCode.OK, revalidated.StatusCode);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task AFileWithoutSiblingsSaysNoVary(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);

        using var response = await server.GetAsync("/css/site.css", ("Accept-Encoding", "br, gzip"));

        Assert.Null(response.Header("Vary"));
        Assert.Null(response.Header("Content-Encoding"));
        Assert.Equal(StaticSite.SiteCss, await response.BodyAsync());
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task TurnedOffTheFileItselfIsServed(AmpedMode mode)
    {
        Site.WriteFile("js/app.js.br", Brotli);
        var server = await Site.StartAsync(mode, o => o.ServePrecompressedFiles = false);

        using var response = await server.GetAsync("/js/app.js", ("Accept-Encoding", "br"));

        Assert.Null(response.Header("Content-Encoding"));
        Assert.Equal(StaticSite.AppJs, await response.BodyAsync());
    }
}
