using System.Net;

namespace StaticFiles.Amped.Tests.Middleware;

/// <summary>
/// A folder is served by its default document; without the trailing slash it is redirected first (301), as
/// <c>UseDefaultFiles</c> does; a folder without one falls through.
/// </summary>
public sealed class DefaultDocumentTests : SiteTests
{
    [Theory]
    [MemberData(nameof(Modes))]
    public async Task TheRootServesIndexHtml(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);

        using var root = await server.GetAsync("/");
        using var file = await server.GetAsync("/index.html");

        Assert.Equal(HttpStatusCode.OK, root.StatusCode);
        Assert.Equal(StaticSite.IndexHtml, await root.BodyAsync());
        Assert.Equal("text/html", root.Header("Content-Type"));
        Assert.Equal(StaticSite.IndexHtml.Length, root.Content.Headers.ContentLength);
        // The same representation as the file itself.
        Assert.Equal(file.Header("ETag"), root.Header("ETag"));
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task AFolderWithATrailingSlashServesItsIndexHtml(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);

        using var response = await server.GetAsync("/docs/");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(StaticSite.DocsIndexHtml, await response.BodyAsync());
        Assert.Equal("text/html", response.Header("Content-Type"));
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task HeadOfAFolderSendsTheDocumentsHeaders(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);

        using var response = await server.HeadAsync("/docs/");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(StaticSite.DocsIndexHtml.Length, response.Content.Headers.ContentLength);
        Assert.Empty(await response.BodyAsync());
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task AFolderWithoutItsSlashIsRedirected(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);

        using var get = await server.GetAsync("/docs");
        using var head = await server.HeadAsync("/docs");

        Assert.Equal(HttpStatusCode.MovedPermanently, get.StatusCode);
        Assert.Equal("/docs/", get.Header("Location"));
        Assert.False(get.FellThrough());
        Assert.Empty(await get.BodyAsync());
        Assert.Equal(HttpStatusCode.MovedPermanently, head.StatusCode);
        Assert.Equal("/docs/", head.Header("Location"));
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task TheRedirectKeepsTheQueryString(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);

        using var response = await server.GetAsync("/docs?page=2&q=two%20words");

        Assert.Equal(HttpStatusCode.MovedPermanently, response.StatusCode);
        Assert.Equal("/docs/?page=2&q=two%20words", response.Header("Location"));
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task WithoutTheRedirectAFolderWithoutItsSlashFallsThrough(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode, o => o.RedirectToAppendTrailingSlash = false);

        using var noSlash = await server.GetAsync("/docs");
        using var slash = await server.GetAsync("/docs/");

        Assert.Equal(HttpStatusCode.NotFound, noSlash.StatusCode);
        Assert.True(noSlash.FellThrough());
        Assert.Null(noSlash.Header("Location"));
        Assert.Equal(HttpStatusCode.OK, slash.StatusCode);
        Assert.Equal(StaticSite.DocsIndexHtml, await slash.BodyAsync());
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task AFolderWithoutADefaultDocumentFallsThrough(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);

        foreach (var path in new[] { "/css/", "/css", "/img/", "/img" })
        {
            using var response = await server.GetAsync(path);

            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            Assert.True(response.FellThrough(), path);
            Assert.Null(response.Header("Location"));
        }
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task TheRedirectEscapesTheFolderName(AmpedMode mode)
    {
        Site.WriteFile("my docs/été/index.html", StaticSite.DocsIndexHtml);
        var server = await Site.StartAsync(mode);

        using var redirect = await server.GetAsync("/my%20docs/%C3%A9t%C3%A9?q=a%20b");
        using var followed = await server.GetAsync(redirect.Header("Location")!);

        Assert.Equal(HttpStatusCode.MovedPermanently, redirect.StatusCode);
        Assert.Equal("/my%20docs/%C3%A9t%C3%A9/?q=a%20b", redirect.Header("Location"));
        Assert.Equal(HttpStatusCode.OK, followed.StatusCode);
        Assert.Equal(StaticSite.DocsIndexHtml, await followed.BodyAsync());
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task OtherMethodsOnAFolderFallThroughWithoutARedirect(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);

        using var post = await server.SendAsync("POST", "/docs");
        using var postSlash = await server.SendAsync("POST", "/docs/");

        Assert.Equal(HttpStatusCode.NotFound, post.StatusCode);
        Assert.True(post.FellThrough());
        Assert.Equal(HttpStatusCode.NotFound, postSlash.StatusCode);
        Assert.True(postSlash.FellThrough());
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task TheDefaultNamesAreTriedInOrder(AmpedMode mode)
    {
        Site.WriteFile("both/default.html", "default.html"u8.ToArray());
        Site.WriteFile("both/index.htm", "index.htm"u8.ToArray());
        Site.WriteFile("only-default/default.htm", "default.htm"u8.ToArray());
        var server = await Site.StartAsync(mode);

        using var both = await server.GetAsync("/both/");
        using var onlyDefault = await server.GetAsync("/only-default/");

        Assert.Equal("index.htm"u8.ToArray(), await both.BodyAsync());
        Assert.Equal("default.htm"u8.ToArray(), await onlyDefault.BodyAsync());
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task TheDefaultNamesCanBeReplaced(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode, o =>
        {
            o.DefaultFileNames.Clear();
            o.DefaultFileNames.Add("site.css");
        });

        using var css = await server.GetAsync("/css/");
        using var root = await server.GetAsync("/");
        using var docs = await server.GetAsync("/docs/");

        Assert.Equal(HttpStatusCode.OK, css.StatusCode);
        Assert.Equal("text/css", css.Header("Content-Type"));
        Assert.Equal(StaticSite.SiteCss, await css.BodyAsync());
        Assert.Equal(HttpStatusCode.NotFound, root.StatusCode);
        Assert.True(root.FellThrough());
        Assert.Equal(HttpStatusCode.NotFound, docs.StatusCode);
        Assert.True(docs.FellThrough());
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task AFolderNamedLikeADefaultDocumentIsNotOne(AmpedMode mode)
    {
        Directory.CreateDirectory(Site.PathOf("trap/index.html"));
        var server = await Site.StartAsync(mode);

        using var response = await server.GetAsync("/trap/");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.True(response.FellThrough());
    }

    // A trailing slash names a folder (RequestPaths: "endsWithSlash says whether the request named a folder"); a file
    // asked for as a folder does not exist there, as open("index.html/") fails with ENOTDIR. Serving it anyway gives
    // every file a second URL whose relative links resolve one level too deep.
    [Theory]
    [MemberData(nameof(Modes))]
    public async Task AFileNamedAsAFolderFallsThrough(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);

        using var file = await server.GetAsync("/index.html/");
        using var nested = await server.GetAsync("/css/site.css/");

        Assert.Equal(HttpStatusCode.NotFound, file.StatusCode);
        Assert.True(file.FellThrough());
        Assert.Equal(HttpStatusCode.NotFound, nested.StatusCode);
        Assert.True(nested.FellThrough());
    }
}
