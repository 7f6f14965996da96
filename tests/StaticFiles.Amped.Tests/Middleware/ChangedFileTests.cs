using System.Net;
using System.Text;

namespace StaticFiles.Amped.Tests.Middleware;

/// <summary>
/// A file changed on disk is served as it is now (new bytes, new length, new ETag) as soon as inotify reports the
/// change to the caches: the tests ask until the change shows, for at most 30 s.
/// </summary>
public sealed class ChangedFileTests : SiteTests
{
    [Theory]
    [MemberData(nameof(Modes))]
    public async Task ARewrittenFileIsServedWithItsNewBytesAndANewETag(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);
        using var before = await server.GetAsync("/css/site.css");
        var oldETag = before.Header("ETag")!;
        Assert.Equal(StaticSite.SiteCss, await before.BodyAsync());

        var rewritten = Encoding.UTF8.GetBytes("body { color: red; }\nh1 { font-weight: 700; }\n/* longer than before */\n");
        Assert.NotEqual(StaticSite.SiteCss.Length, rewritten.Length);
        File.WriteAllBytes(Site.PathOf("css/site.css"), rewritten);

        using var after = await server.GetUntilAsync("/css/site.css", r => r.Header("ETag") != oldETag);
        using var revalidated = await server.GetAsync("/css/site.css", ("If-None-Match", oldETag));
        using var staleRange = await server.GetAsync("/css/site.css", ("Range", "bytes=0-3"), ("If-Range", oldETag));

        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
        Assert.Equal(rewritten, await after.BodyAsync());
        Assert.Equal(rewritten.Length, after.Content.Headers.ContentLength);
        Assert.NotEqual(oldETag, after.Header("ETag"));
        Assert.NotEqual(StaticSite.FixedLastModified, after.Content.Headers.LastModified);
        // The old tag no longer validates: the client gets the new bytes, not a 304 or a range of them.
        Assert.Equal(HttpStatusCode.OK, revalidated.StatusCode);
        Assert.Equal(rewritten, await revalidated.BodyAsync());
        Assert.Equal(HttpStatusCode.OK, staleRange.StatusCode);
        Assert.Equal(rewritten, await staleRange.BodyAsync());
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task AFileReplacedByRenameWithTheSameLengthAndMtimeGetsANewETag(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);
        using var before = await server.GetAsync("/js/app.js");
        var oldETag = before.Header("ETag")!;

        // An atomic deploy: same length, same mtime, different bytes, new inode.
        var replacement = (byte[])StaticSite.AppJs.Clone();
        replacement[0] = (byte)'D';
        var staged = Site.PathOf("js/app.js.new");
        File.WriteAllBytes(staged, replacement);
        File.SetLastWriteTimeUtc(staged, StaticSite.FixedLastModified.UtcDateTime);
        File.Move(staged, Site.PathOf("js/app.js"), overwrite: true);

        using var after = await server.GetUntilAsync("/js/app.js", r => r.Header("ETag") != oldETag);
        using var revalidated = await server.GetAsync("/js/app.js", ("If-None-Match", oldETag));

        Assert.Equal(replacement, await after.BodyAsync());
        Assert.Equal(before.Header("Last-Modified"), after.Header("Last-Modified"));
        Assert.NotEqual(oldETag, after.Header("ETag"));
        Assert.Equal(HttpStatusCode.OK, revalidated.StatusCode);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task AnUnchangedFileKeepsItsETag(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);
        using var before = await server.GetAsync("/js/app.js");

        // Touching another file changes nothing here.
        File.WriteAllBytes(Site.PathOf("css/site.css"), "x"u8.ToArray());
        using var after = await server.GetAsync("/js/app.js");
        using var revalidated = await server.GetAsync("/js/app.js", ("If-None-Match", before.Header("ETag")!));

        Assert.Equal(before.Header("ETag"), after.Header("ETag"));
        Assert.Equal(HttpStatusCode.NotModified, revalidated.StatusCode);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task ADeletedFileFallsThroughAndARecreatedOneIsServed(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);
        using var before = await server.GetAsync("/img/logo.png");
        Assert.Equal(HttpStatusCode.OK, before.StatusCode);

        File.Delete(Site.PathOf("img/logo.png"));
        using var deleted = await server.GetUntilAsync("/img/logo.png", HttpStatusCode.NotFound);
        File.WriteAllBytes(Site.PathOf("img/logo.png"), [1, 2, 3]);
        // The miss was cached; the create empties the cache when inotify reports it.
        using var recreated = await server.GetUntilAsync("/img/logo.png", HttpStatusCode.OK);

        Assert.Equal(HttpStatusCode.NotFound, deleted.StatusCode);
        Assert.True(deleted.FellThrough());
        Assert.Equal(HttpStatusCode.OK, recreated.StatusCode);
        Assert.Equal(new byte[] { 1, 2, 3 }, await recreated.BodyAsync());
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task AFileAddedAfterStartIsServed(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);
        using var missing = await server.GetAsync("/new/page.html");

        Site.WriteFile("new/page.html", "<p>new</p>"u8.ToArray());
        using var added = await server.GetUntilAsync("/new/page.html", HttpStatusCode.OK);

        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal(HttpStatusCode.OK, added.StatusCode);
        Assert.Equal("<p>new</p>"u8.ToArray(), await added.BodyAsync());
    }
}
