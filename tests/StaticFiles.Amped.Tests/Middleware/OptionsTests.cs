using System.Globalization;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.StaticFiles;

namespace StaticFiles.Amped.Tests.Middleware;

/// <summary><see cref="AmpedStaticFileOptions.CacheControl"/>, <see cref="AmpedStaticFileOptions.OnPrepareResponse"/> and <see cref="AmpedStaticFileOptions.RequestPath"/>.</summary>
public sealed class OptionsTests : SiteTests
{
    [Theory]
    [MemberData(nameof(Modes))]
    public async Task CacheControlIsSentWithEveryFile(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode, o => o.CacheControl = "public, max-age=60");

        using var file = await server.GetAsync("/css/site.css");
        using var document = await server.GetAsync("/");
        using var partial = await server.GetAsync("/big.bin", ("Range", "bytes=0-0"));
        using var notModified = await server.GetAsync("/css/site.css", ("If-None-Match", file.Header("ETag")!));
        using var missing = await server.GetAsync("/missing.css");

        Assert.Equal("public, max-age=60", file.Header("Cache-Control"));
        Assert.Equal("public, max-age=60", document.Header("Cache-Control"));
        Assert.Equal("public, max-age=60", partial.Header("Cache-Control"));
        // RFC 9110 §15.4.5: a 304 carries the Cache-Control a 200 would have.
        Assert.Equal(HttpStatusCode.NotModified, notModified.StatusCode);
        Assert.Equal("public, max-age=60", notModified.Header("Cache-Control"));
        // Only files get it.
        Assert.Null(missing.Header("Cache-Control"));
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task WithoutCacheControlNoneIsSent(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);

        using var response = await server.GetAsync("/css/site.css");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Null(response.Header("Cache-Control"));
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task OnPrepareResponseSeesTheFileAndCanAddHeaders(AmpedMode mode)
    {
        var seen = new List<(string Name, long Length, string? PhysicalPath, DateTimeOffset LastModified, bool IsDirectory)>();
        var server = await Site.StartAsync(mode, o =>
        {
            o.CacheControl = "public, max-age=60";
            o.OnPrepareResponse = context =>
            {
                lock (seen)
                {
                    seen.Add((context.File.Name, context.File.Length, context.File.PhysicalPath, context.File.LastModified, context.File.IsDirectory));
                }
                context.Context.Response.Headers["X-File"] = context.File.Name + ":" + context.File.Length.ToString(CultureInfo.InvariantCulture);
                if (context.File.Name == "site.css")
                {
                    // It runs after the middleware's own headers, so it can override them.
                    context.Context.Response.Headers.CacheControl = "no-store";
                }
            };
        });

        using var css = await server.GetAsync("/css/site.css");
        using var document = await server.GetAsync("/docs/");
        using var big = await server.GetAsync("/big.bin");

        Assert.Equal($"site.css:{StaticSite.SiteCss.Length}", css.Header("X-File"));
        Assert.Equal("no-store", css.Header("Cache-Control"));
        Assert.Equal(StaticSite.SiteCss, await css.BodyAsync());
        Assert.Equal($"index.html:{StaticSite.DocsIndexHtml.Length}", document.Header("X-File"));
        Assert.Equal($"big.bin:{StaticSite.BigLength}", big.Header("X-File"));
        Assert.Equal("public, max-age=60", big.Header("Cache-Control"));
        Assert.Collection(
            seen,
            s => Assert.Equal(("site.css", (long)StaticSite.SiteCss.Length, (string?)Site.PathOf("css/site.css"), StaticSite.FixedLastModified, false), s),
            s => Assert.Equal(("index.html", (long)StaticSite.DocsIndexHtml.Length, (string?)Site.PathOf("docs/index.html"), StaticSite.FixedLastModified, false), s),
            s => Assert.Equal(("big.bin", (long)StaticSite.BigLength, (string?)Site.PathOf("big.bin"), StaticSite.FixedLastModified, false), s));
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task OnPrepareResponseIsNotCalledForWhatFallsThrough(AmpedMode mode)
    {
        var calls = 0;
        var server = await Site.StartAsync(mode, o => o.OnPrepareResponse = context =>
        {
            Interlocked.Increment(ref calls);
            context.Context.Response.Headers["X-File"] = context.File.Name;
        });

        foreach (var path in new[] { "/missing.css", "/secret.unknownext", "/.env", "/css/", "/docs" })
        {
            using var response = await server.GetAsync(path);
            Assert.Null(response.Header("X-File"));
        }
        using var post = await server.SendAsync("POST", "/css/site.css");
        Assert.Null(post.Header("X-File"));

        Assert.Equal(0, calls);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task OnPrepareResponseCanReadTheFile(AmpedMode mode)
    {
        byte[]? read = null;
        var server = await Site.StartAsync(mode, o => o.OnPrepareResponse = context =>
        {
            using var stream = context.File.CreateReadStream();
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            read = copy.ToArray();
        });

        using var response = await server.GetAsync("/js/app.js");

        Assert.Equal(StaticSite.AppJs, read);
        Assert.Equal(StaticSite.AppJs, await response.BodyAsync());
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task ARequestPathServesBelowItOnly(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode, o => o.RequestPath = "/static");

        using var below = await server.GetAsync("/static/css/site.css");
        using var upper = await server.GetAsync("/STATIC/css/site.css");
        using var atRoot = await server.GetAsync("/css/site.css");
        using var prefixOnly = await server.GetAsync("/staticx/css/site.css");
        using var folder = await server.GetAsync("/static/docs/");

        Assert.Equal(HttpStatusCode.OK, below.StatusCode);
        Assert.Equal(StaticSite.SiteCss, await below.BodyAsync());
        Assert.Equal("text/css", below.Header("Content-Type"));
        // Path segments match case-insensitively, as StartsWithSegments and UseStaticFiles do.
        Assert.Equal(HttpStatusCode.OK, upper.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, atRoot.StatusCode);
        Assert.True(atRoot.FellThrough());
        Assert.Equal(HttpStatusCode.NotFound, prefixOnly.StatusCode);
        Assert.True(prefixOnly.FellThrough());
        Assert.Equal(StaticSite.DocsIndexHtml, await folder.BodyAsync());
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task ARequestPathKeepsItsPrefixInRedirects(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode, o => o.RequestPath = "/static");

        using var docs = await server.GetAsync("/static/docs?x=1");
        using var root = await server.GetAsync("/static/");

        Assert.Equal(HttpStatusCode.MovedPermanently, docs.StatusCode);
        Assert.Equal("/static/docs/?x=1", docs.Header("Location"));
        Assert.Equal(HttpStatusCode.OK, root.StatusCode);
        Assert.Equal(StaticSite.IndexHtml, await root.BodyAsync());
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task ARedirectKeepsThePathBase(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode, Site.Root, before: app => app.UsePathBase("/app"));

        using var based = await server.GetAsync("/app/docs?x=1");
        using var file = await server.GetAsync("/app/css/site.css");
        using var unbased = await server.GetAsync("/docs");

        Assert.Equal(HttpStatusCode.MovedPermanently, based.StatusCode);
        Assert.Equal("/app/docs/?x=1", based.Header("Location"));
        Assert.Equal(StaticSite.SiteCss, await file.BodyAsync());
        // Without the base nothing is added to the Location.
        Assert.Equal("/docs/", unbased.Header("Location"));
    }

    // The served root's own folder, asked for without its slash, is a folder without its slash like any other
    // (UseDefaultFiles redirects /static to /static/): index.html links "css/site.css", which from /static resolves
    // to /css/site.css, outside the RequestPath.
    [Theory]
    [MemberData(nameof(Modes))]
    public async Task TheRequestPathItselfIsRedirectedToItsFolder(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode, o => o.RequestPath = "/static");

        using var response = await server.GetAsync("/static?x=1");

        Assert.Equal(HttpStatusCode.MovedPermanently, response.StatusCode);
        Assert.Equal("/static/?x=1", response.Header("Location"));
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task ACustomProviderTypeAppliesToPartsToo(AmpedMode mode)
    {
        var provider = new FileExtensionContentTypeProvider();
        provider.Mappings[".bin"] = "application/x-amped";
        var server = await Site.StartAsync(mode, o => o.ContentTypeProvider = provider);

        using var response = await server.GetAsync("/big.bin", ("Range", "bytes=0-0,2-2"));
        var body = System.Text.Encoding.Latin1.GetString(await response.BodyAsync());

        Assert.Equal(HttpStatusCode.PartialContent, response.StatusCode);
        Assert.Equal(2, body.Split("Content-Type: application/x-amped\r\n").Length - 1);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task OnPrepareResponseSeesFileResponsesNotErrors(AmpedMode mode)
    {
        var seen = new List<string>();
        var server = await Site.StartAsync(mode, o => o.OnPrepareResponse = c =>
        {
            lock (seen)
            {
                seen.Add(c.Context.Request.Headers.Range.Count > 0 ? "range" : c.Context.Request.Headers.IfNoneMatch.Count > 0 ? "304" : "200");
            }
        });

        using var ok = await server.GetAsync("/css/site.css");
        using var notModified = await server.GetAsync("/css/site.css", ("If-None-Match", ok.Header("ETag")!));
        using var failed = await server.GetAsync("/css/site.css", ("If-Match", "\"other\""));
        using var unsatisfiable = await server.GetAsync("/css/site.css", ("Range", "bytes=999999-"));
        using var partial = await server.GetAsync("/css/site.css", ("Range", "bytes=0-1"));

        Assert.Equal(HttpStatusCode.PreconditionFailed, failed.StatusCode);
        Assert.Equal(HttpStatusCode.RequestedRangeNotSatisfiable, unsatisfiable.StatusCode);
        // As UseStaticFiles: 200, 304 and 206 go through the hook; 412 and 416 do not.
        Assert.Equal(["200", "304", "range"], seen);
    }
    [Theory]
    [MemberData(nameof(Modes))]
    public async Task WhatOnPrepareResponseSetsIsWhatGoesOut(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode, o => o.OnPrepareResponse = context =>
        {
            var response = context.Context.Response;
            // Runs after the middleware set status, type and length, so it can change them.
            response.ContentType = "text/plain; charset=utf-8";
            response.Headers["X-Length-Seen"] = response.ContentLength?.ToString(CultureInfo.InvariantCulture) ?? "none";
        });

        using var css = await server.GetAsync("/css/site.css");
        using var partial = await server.GetAsync("/big.bin", ("Range", "bytes=10-19"));

        Assert.Equal("text/plain; charset=utf-8", css.Content.Headers.ContentType?.ToString());
        Assert.Equal(StaticSite.SiteCss.Length.ToString(CultureInfo.InvariantCulture), css.Header("X-Length-Seen"));
        Assert.Equal(StaticSite.SiteCss, await css.BodyAsync());
        Assert.Equal("text/plain; charset=utf-8", partial.Content.Headers.ContentType?.ToString());
        Assert.Equal("10", partial.Header("X-Length-Seen"));
        Assert.Equal(StaticSite.Big.AsSpan(10, 10).ToArray(), await partial.BodyAsync());
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task OnPrepareResponseSeesTheFinalStatus(AmpedMode mode)
    {
        var statuses = new List<(string Request, int Status)>();
        var server = await Site.StartAsync(mode, o => o.OnPrepareResponse = context =>
        {
            var request = context.Context.Request;
            lock (statuses)
            {
                statuses.Add((request.Headers.Range.Count > 0 ? "range" : request.Headers.IfNoneMatch.Count > 0 ? "conditional" : "plain",
                    context.Context.Response.StatusCode));
            }
        });

        using var plain = await server.GetAsync("/css/site.css");
        using var conditional = await server.GetAsync("/css/site.css", ("If-None-Match", plain.Header("ETag")!));
        using var range = await server.GetAsync("/big.bin", ("Range", "bytes=0-0"));
        using var multipart = await server.GetAsync("/big.bin", ("Range", "bytes=0-0,5-5"));

        Assert.Equal(HttpStatusCode.NotModified, conditional.StatusCode);
        Assert.Equal(HttpStatusCode.PartialContent, multipart.StatusCode);
        Assert.Equal([("plain", 200), ("conditional", 304), ("range", 206), ("range", 206)], statuses);
    }
}
