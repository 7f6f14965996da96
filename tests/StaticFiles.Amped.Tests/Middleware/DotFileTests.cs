using System.Net;

namespace StaticFiles.Amped.Tests.Middleware;

/// <summary>
/// A path with a segment that starts with a dot falls through unless <see cref="AmpedStaticFileOptions.ServeDotFiles"/>;
/// the content type rule still applies to what it lets through.
/// </summary>
public sealed class DotFileTests : SiteTests
{
    public static TheoryData<AmpedMode, string> DotPaths
    {
        get
        {
            var data = new TheoryData<AmpedMode, string>();
            foreach (var mode in new[] { AmpedMode.Amped, AmpedMode.Sped })
            {
                foreach (var path in new[] { "/.env", "/.git/config", "/.git/", "/.git", "/.well-known/security.txt", "/.well-known/" })
                {
                    data.Add(mode, path);
                }
            }
            return data;
        }
    }


    [Theory]
    [MemberData(nameof(DotPaths))]
    public async Task DotPathsFallThroughByDefault(AmpedMode mode, string path)
    {
        var server = await Site.StartAsync(mode);

        using var get = await server.GetAsync(path);
        using var head = await server.HeadAsync(path);

        Assert.Equal(HttpStatusCode.NotFound, get.StatusCode);
        Assert.True(get.FellThrough());
        Assert.Null(get.Headers.ETag);
        Assert.Null(get.Header("Location"));
        Assert.Empty(await get.BodyAsync());
        Assert.Equal(HttpStatusCode.NotFound, head.StatusCode);
        Assert.True(head.FellThrough());
    }

    [Theory]
    [MemberData(nameof(DotPaths))]
    public async Task ServingUnknownTypesDoesNotServeDotFiles(AmpedMode mode, string path)
    {
        var server = await Site.StartAsync(mode, o => o.ServeUnknownFileTypes = true);

        using var response = await server.GetAsync(path);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.True(response.FellThrough());
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task ServeDotFilesServesAKnownTypeBelowADotFolder(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode, o => o.ServeDotFiles = true);

        using var known = await server.GetAsync("/.well-known/security.txt");
        using var unknown = await server.GetAsync("/.env");

        Assert.Equal(HttpStatusCode.OK, known.StatusCode);
        Assert.Equal("text/plain", known.Header("Content-Type"));
        Assert.Equal(StaticSite.SecurityTxt, await known.BodyAsync());
        // ".env" is an unknown type: the dot rule let it through, the type rule did not.
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.True(unknown.FellThrough());
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task ServeDotFilesWithUnknownTypesServesThem(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode, o =>
        {
            o.ServeDotFiles = true;
            o.ServeUnknownFileTypes = true;
        });

        using var env = await server.GetAsync("/.env");
        using var git = await server.GetAsync("/.git/config");
        using var folder = await server.GetAsync("/.git/");

        Assert.Equal(HttpStatusCode.OK, env.StatusCode);
        Assert.Equal(StaticSite.DotEnv, await env.BodyAsync());
        Assert.Equal(HttpStatusCode.OK, git.StatusCode);
        Assert.Equal(StaticSite.GitConfig, await git.BodyAsync());
        // A folder without a default document still falls through.
        Assert.Equal(HttpStatusCode.NotFound, folder.StatusCode);
        Assert.True(folder.FellThrough());
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task DotFilesFallThroughBelowARequestPath(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode, o =>
        {
            o.RequestPath = "/static";
            o.ServeUnknownFileTypes = true;
        });

        using var env = await server.GetAsync("/static/.env");
        using var css = await server.GetAsync("/static/css/site.css");

        Assert.Equal(HttpStatusCode.NotFound, env.StatusCode);
        Assert.True(env.FellThrough());
        Assert.Equal(HttpStatusCode.OK, css.StatusCode);
    }
}
