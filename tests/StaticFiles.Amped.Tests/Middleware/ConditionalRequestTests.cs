using System.Globalization;
using System.Net;

namespace StaticFiles.Amped.Tests.Middleware;

/// <summary>
/// If-None-Match, If-Modified-Since, If-Match and If-Unmodified-Since against the file's strong ETag and its
/// Last-Modified (every file's mtime is <see cref="StaticSite.FixedLastModified"/>), in the order of RFC 9110 §13.2.2.
/// </summary>
public sealed class ConditionalRequestTests : SiteTests
{
    private const string Path = "/css/site.css";

    private static string HttpDate(DateTimeOffset date) => date.ToUniversalTime().ToString("R", CultureInfo.InvariantCulture);

    private static async Task<string> ETagAsync(Microsoft.AspNetCore.TestHost.TestServer server)
    {
        using var response = await server.GetAsync(Path);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var etag = response.Header("ETag");
        Assert.NotNull(etag);
        Assert.StartsWith("\"", etag, StringComparison.Ordinal);
        return etag;
    }

    private static async Task AssertNotModifiedAsync(HttpResponseMessage response, string etag)
    {
        Assert.Equal(HttpStatusCode.NotModified, response.StatusCode);
        Assert.False(response.FellThrough());
        Assert.Equal(etag, response.Header("ETag"));
        Assert.Empty(await response.BodyAsync());
    }

    private static async Task AssertFullAsync(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(StaticSite.SiteCss, await response.BodyAsync());
    }

    private static async Task AssertPreconditionFailedAsync(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.PreconditionFailed, response.StatusCode);
        Assert.False(response.FellThrough());
        Assert.Empty(await response.BodyAsync());
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task IfNoneMatchWithTheETagIsNotModified(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);
        var etag = await ETagAsync(server);

        using var get = await server.GetAsync(Path, ("If-None-Match", etag));
        using var head = await server.HeadAsync(Path, ("If-None-Match", etag));
        using var inList = await server.GetAsync(Path, ("If-None-Match", "\"other\", " + etag));

        await AssertNotModifiedAsync(get, etag);
        await AssertNotModifiedAsync(head, etag);
        await AssertNotModifiedAsync(inList, etag);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task IfNoneMatchComparesWeakly(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);
        var etag = await ETagAsync(server);

        using var response = await server.GetAsync(Path, ("If-None-Match", "W/" + etag));

        await AssertNotModifiedAsync(response, etag);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task IfNoneMatchWithAnotherTagIsServed(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);

        using var other = await server.GetAsync(Path, ("If-None-Match", "\"not-the-etag\""));
        using var otherWeak = await server.GetAsync(Path, ("If-None-Match", "W/\"not-the-etag\""));

        await AssertFullAsync(other);
        await AssertFullAsync(otherWeak);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task IfNoneMatchStarIsNotModified(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);
        var etag = await ETagAsync(server);

        using var response = await server.GetAsync(Path, ("If-None-Match", "*"));

        await AssertNotModifiedAsync(response, etag);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task IfModifiedSinceAtOrAfterLastModifiedIsNotModified(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);
        var etag = await ETagAsync(server);

        using var at = await server.GetAsync(Path, ("If-Modified-Since", HttpDate(StaticSite.FixedLastModified)));
        using var after = await server.GetAsync(Path, ("If-Modified-Since", HttpDate(StaticSite.FixedLastModified.AddHours(1))));

        await AssertNotModifiedAsync(at, etag);
        await AssertNotModifiedAsync(after, etag);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task IfModifiedSinceBeforeLastModifiedIsServed(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);

        using var before = await server.GetAsync(Path, ("If-Modified-Since", HttpDate(StaticSite.FixedLastModified.AddSeconds(-1))));
        using var invalid = await server.GetAsync(Path, ("If-Modified-Since", "not a date"));

        await AssertFullAsync(before);
        await AssertFullAsync(invalid);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task IfModifiedSinceIsIgnoredWhenIfNoneMatchIsSent(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);
        var etag = await ETagAsync(server);
        var after = HttpDate(StaticSite.FixedLastModified.AddHours(1));
        var before = HttpDate(StaticSite.FixedLastModified.AddHours(-1));

        // A date that alone would give 304 does not, when the tag does not match.
        using var notMatching = await server.GetAsync(Path, ("If-None-Match", "\"not-the-etag\""), ("If-Modified-Since", after));
        // And a date that alone would give 200 does not stop a matching tag.
        using var matching = await server.GetAsync(Path, ("If-None-Match", etag), ("If-Modified-Since", before));

        await AssertFullAsync(notMatching);
        await AssertNotModifiedAsync(matching, etag);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task IfMatchWithAnotherTagFails(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);
        var etag = await ETagAsync(server);

        using var other = await server.GetAsync(Path, ("If-Match", "\"not-the-etag\""));
        // If-Match compares strongly: the weak form of the current tag does not match.
        using var weak = await server.GetAsync(Path, ("If-Match", "W/" + etag));
        using var head = await server.HeadAsync(Path, ("If-Match", "\"not-the-etag\""));

        await AssertPreconditionFailedAsync(other);
        await AssertPreconditionFailedAsync(weak);
        Assert.Equal(HttpStatusCode.PreconditionFailed, head.StatusCode);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task IfMatchWithTheETagOrStarIsServed(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);
        var etag = await ETagAsync(server);

        using var match = await server.GetAsync(Path, ("If-Match", etag));
        using var inList = await server.GetAsync(Path, ("If-Match", "\"other\", " + etag));
        using var star = await server.GetAsync(Path, ("If-Match", "*"));

        await AssertFullAsync(match);
        await AssertFullAsync(inList);
        await AssertFullAsync(star);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task IfUnmodifiedSinceBeforeLastModifiedFails(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);

        using var response = await server.GetAsync(Path, ("If-Unmodified-Since", HttpDate(StaticSite.FixedLastModified.AddSeconds(-1))));

        await AssertPreconditionFailedAsync(response);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task IfUnmodifiedSinceAtOrAfterLastModifiedIsServed(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);

        using var at = await server.GetAsync(Path, ("If-Unmodified-Since", HttpDate(StaticSite.FixedLastModified)));
        using var after = await server.GetAsync(Path, ("If-Unmodified-Since", HttpDate(StaticSite.FixedLastModified.AddDays(1))));

        await AssertFullAsync(at);
        await AssertFullAsync(after);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task IfUnmodifiedSinceIsIgnoredWhenIfMatchIsSent(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);
        var etag = await ETagAsync(server);

        using var response = await server.GetAsync(Path,
            ("If-Match", etag),
            ("If-Unmodified-Since", HttpDate(StaticSite.FixedLastModified.AddSeconds(-1))));

        await AssertFullAsync(response);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task IfMatchIsEvaluatedBeforeIfNoneMatch(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);
        var etag = await ETagAsync(server);

        using var failed = await server.GetAsync(Path, ("If-Match", "\"not-the-etag\""), ("If-None-Match", etag));

        await AssertPreconditionFailedAsync(failed);
    }
}
