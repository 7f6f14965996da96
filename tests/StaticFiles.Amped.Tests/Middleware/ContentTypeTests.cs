using System.Net;
using Microsoft.AspNetCore.StaticFiles;

namespace StaticFiles.Amped.Tests.Middleware;

/// <summary>
/// The content type comes from the provider; a file whose type it does not know falls through unless
/// <see cref="AmpedStaticFileOptions.ServeUnknownFileTypes"/>.
/// </summary>
public sealed class ContentTypeTests : SiteTests
{
    public static TheoryData<AmpedMode, string, string> KnownTypes
    {
        get
        {
            var data = new TheoryData<AmpedMode, string, string>();
            foreach (var mode in new[] { AmpedMode.Amped, AmpedMode.Sped })
            {
                data.Add(mode, "index.html", "text/html");
                data.Add(mode, "css/site.css", "text/css");
                data.Add(mode, "js/app.js", "text/javascript");
                data.Add(mode, "img/logo.png", "image/png");
                data.Add(mode, "empty.txt", "text/plain");
                data.Add(mode, "big.bin", "application/octet-stream");
            }
            return data;
        }
    }

    public static TheoryData<AmpedMode, string> UnknownTypes
    {
        get
        {
            var data = new TheoryData<AmpedMode, string>();
            foreach (var mode in new[] { AmpedMode.Amped, AmpedMode.Sped })
            {
                data.Add(mode, "secret.unknownext");
                data.Add(mode, "noext");
            }
            return data;
        }
    }


    [Theory]
    [MemberData(nameof(KnownTypes))]
    public async Task AKnownExtensionGetsItsType(AmpedMode mode, string file, string contentType)
    {
        var server = await Site.StartAsync(mode);

        using var response = await server.GetAsync("/" + file);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(contentType, response.Header("Content-Type"));
        Assert.Equal(StaticSite.Files[file], await response.BodyAsync());
    }

    [Theory]
    [MemberData(nameof(UnknownTypes))]
    public async Task AnUnknownTypeFallsThroughByDefault(AmpedMode mode, string file)
    {
        var server = await Site.StartAsync(mode);

        using var response = await server.GetAsync("/" + file);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.True(response.FellThrough());
        Assert.Null(response.Headers.ETag);
        Assert.Empty(await response.BodyAsync());
    }

    [Theory]
    [MemberData(nameof(UnknownTypes))]
    public async Task AnUnknownTypeIsServedAsOctetStreamWhenAsked(AmpedMode mode, string file)
    {
        var server = await Site.StartAsync(mode, o => o.ServeUnknownFileTypes = true);

        using var response = await server.GetAsync("/" + file);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.False(response.FellThrough());
        Assert.Equal("application/octet-stream", response.Header("Content-Type"));
        Assert.Equal(StaticSite.Files[file], await response.BodyAsync());
    }

    [Theory]
    [MemberData(nameof(UnknownTypes))]
    public async Task AnUnknownTypeGetsTheDefaultContentType(AmpedMode mode, string file)
    {
        var server = await Site.StartAsync(mode, o =>
        {
            o.ServeUnknownFileTypes = true;
            o.DefaultContentType = "text/plain; charset=utf-8";
        });

        using var unknown = await server.GetAsync("/" + file);
        using var known = await server.GetAsync("/css/site.css");

        Assert.Equal(HttpStatusCode.OK, unknown.StatusCode);
        Assert.Equal("text/plain; charset=utf-8", unknown.Header("Content-Type"));
        Assert.Equal(StaticSite.Files[file], await unknown.BodyAsync());
        // The default is for unknown types only.
        Assert.Equal("text/css", known.Header("Content-Type"));
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task TheDefaultContentTypeAloneServesNothingUnknown(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode, o => o.DefaultContentType = "text/plain");

        using var response = await server.GetAsync("/secret.unknownext");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.True(response.FellThrough());
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task TheProviderDecidesWhatIsKnown(AmpedMode mode)
    {
        var provider = new FileExtensionContentTypeProvider();
        provider.Mappings[".unknownext"] = "application/x-amped-test";
        Assert.True(provider.Mappings.Remove(".css"));
        var server = await Site.StartAsync(mode, o => o.ContentTypeProvider = provider);

        using var mapped = await server.GetAsync("/secret.unknownext");
        using var unmapped = await server.GetAsync("/css/site.css");

        Assert.Equal(HttpStatusCode.OK, mapped.StatusCode);
        Assert.Equal("application/x-amped-test", mapped.Header("Content-Type"));
        Assert.Equal(StaticSite.SecretUnknown, await mapped.BodyAsync());
        Assert.Equal(HttpStatusCode.NotFound, unmapped.StatusCode);
        Assert.True(unmapped.FellThrough());
    }
}
