using System.Net;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.TestHost;

namespace StaticFiles.Amped.Tests.Middleware;

/// <summary>
/// No request reaches <c>outside.txt</c>, beside the root: every encoding of a climb out of the root is answered
/// 404 by the app after the middleware (or 400), never with the file. Each path is sent twice: through HttpClient,
/// which canonicalizes it (System.Uri removes dot segments; TestHost decodes all but <c>%2F</c>), and as an
/// already fully decoded <see cref="PathString"/> that nothing normalized, as a server that decodes everything would
/// hand it over. Each runs with the default options and with dot files and unknown types allowed, so that the
/// dot-file and content-type rules cannot be what stops it.
/// </summary>
public sealed class TraversalTests : SiteTests
{
    /// <summary>Replaced by the absolute path of <c>outside.txt</c>, without its leading slash.</summary>
    private const string OutsideAbsolute = "{outside}";

    private static readonly byte[] OutsideBytes = Encoding.UTF8.GetBytes(StaticSite.OutsideText);

    public static TheoryData<AmpedMode, string, bool> Attacks
    {
        get
        {
            var paths = new[]
            {
                "/../outside.txt",
                "/%2e%2e/outside.txt",
                "/%2E%2E%2Foutside.txt",
                "/.%2e/outside.txt",
                "/css/../../outside.txt",
                "/css/..%2f..%2foutside.txt",
                "/css/%2e%2e/%2e%2e/outside.txt",
                "/..%5coutside.txt",
                "/css%5c..%5c..%5coutside.txt",
                "/..%252foutside.txt",
                "/%00index.html",
                "/index.html%00",
                "/..%2foutside.txt%00.css",
                "//outside.txt",
                "/" + OutsideAbsolute,
                "/%2f" + OutsideAbsolute,
                "/link-out.txt",
                "/link-out-rel.txt",
                "/link-up/outside.txt",
                "/link-up/site/../outside.txt",
            };
            var data = new TheoryData<AmpedMode, string, bool>();
            foreach (var mode in new[] { AmpedMode.Amped, AmpedMode.Sped })
            {
                foreach (var permissive in new[] { false, true })
                {
                    foreach (var path in paths)
                    {
                        data.Add(mode, path, permissive);
                    }
                }
            }
            return data;
        }
    }


    [Theory]
    [MemberData(nameof(Attacks))]
    public async Task NoEncodingReachesAFileOutsideTheRoot(AmpedMode mode, string attack, bool permissive)
    {
        var server = await Site.StartAsync(mode, o =>
        {
            o.ServeDotFiles = permissive;
            o.ServeUnknownFileTypes = permissive;
        });
        var raw = attack.Replace(OutsideAbsolute, Site.Outside.TrimStart('/'), StringComparison.Ordinal);

        // Through the client: TestHost refuses a decoded NUL itself, as Kestrel answers 400.
        HttpResponseMessage? response = null;
        try
        {
            response = await server.GetAsync(raw);
        }
        catch (InvalidOperationException e) when (e.Message.Contains("null characters", StringComparison.Ordinal))
        {
            Assert.Contains("%00", raw, StringComparison.Ordinal);
        }
        if (response is not null)
        {
            using (response)
            {
                AssertRefused((int)response.StatusCode, response.FellThrough(), await response.BodyAsync(), raw);
            }
        }

        // As a decoded path nothing normalized.
        var decoded = new PathString(Uri.UnescapeDataString(raw));
        var (status, headers, body) = await server.SendPathAsync(HttpMethods.Get, decoded);
        AssertRefused(status, headers[StaticSite.FellThroughHeader] == "1", body, decoded.Value!);

        var (headStatus, headHeaders, _) = await server.SendPathAsync(HttpMethods.Head, decoded);
        AssertRefused(headStatus, headHeaders[StaticSite.FellThroughHeader] == "1", [], decoded.Value!);
        Assert.NotEqual((long?)OutsideBytes.Length, headHeaders.ContentLength);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task TheOutsideFileIsReadableFromARootAboveIt(AmpedMode mode)
    {
        // The control: the file exists and is served where it is inside the root, so the refusals above are the
        // middleware's doing, not a missing or unreadable file.
        var server = await Site.StartAsync(mode, Site.Temp);

        using var response = await server.GetAsync("/outside.txt");
        using var throughSite = await server.GetAsync("/site/css/site.css");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(OutsideBytes, await response.BodyAsync());
        Assert.Equal(StaticSite.SiteCss, await throughSite.BodyAsync());
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task ASymlinkThatStaysInsideIsServed(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);

        using var link = await server.GetAsync("/link-in.txt");
        using var outside = await server.GetAsync("/link-out.txt");

        Assert.Equal(HttpStatusCode.OK, link.StatusCode);
        Assert.Equal(StaticSite.SiteCss, await link.BodyAsync());
        // The type follows the name asked for.
        Assert.Equal("text/plain", link.Header("Content-Type"));
        Assert.Equal(HttpStatusCode.NotFound, outside.StatusCode);
        Assert.True(outside.FellThrough());
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task AFolderSymlinkThatStaysInsideIsServed(AmpedMode mode)
    {
        Directory.CreateSymbolicLink(Site.PathOf("styles"), "css");
        var server = await Site.StartAsync(mode);

        using var inside = await server.GetAsync("/styles/site.css");
        using var outside = await server.GetAsync("/link-up/outside.txt");

        Assert.Equal(HttpStatusCode.OK, inside.StatusCode);
        Assert.Equal(StaticSite.SiteCss, await inside.BodyAsync());
        Assert.Equal(HttpStatusCode.NotFound, outside.StatusCode);
        Assert.True(outside.FellThrough());
    }

    private static void AssertRefused(int status, bool fellThrough, byte[] body, string path)
    {
        Assert.False(body.AsSpan().IndexOf(OutsideBytes) >= 0, $"{path}: the body holds outside.txt");
        Assert.NotEqual(OutsideBytes, body);
        Assert.True(
            (status == StatusCodes.Status404NotFound && fellThrough) || status == StatusCodes.Status400BadRequest,
            $"{path}: {status}, fell through: {fellThrough}");
    }
}
