using System.Globalization;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.TestHost;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Hosting;
using Microsoft.Net.Http.Headers;

namespace StaticFiles.Amped.Tests.Middleware;

/// <summary>
/// ASP.NET Core's own <c>UseStaticFiles</c> as the oracle: each request goes to it and to <c>UseAmpedStaticFiles</c>
/// over the same <see cref="StaticSite"/> root, both through TestHost with the same terminal app, and the answers
/// must agree on status, Content-Type, Content-Length, ETag (presence and strength: the values are each server's
/// own), Last-Modified, Content-Range, Location, whether the request fell through, and the body. Where they may
/// not agree the case lists the difference, with what each answers and why ours is the one to keep; the test then
/// asserts that exact difference, so the list cannot outlive what it describes.
/// </summary>
public sealed class UseStaticFilesOracleTests : IAsyncLifetime
{
    private const string Status = "status";
    private const string ContentType = "Content-Type";
    private const string ContentLength = "Content-Length";
    private const string ETag = "ETag";
    private const string LastModified = "Last-Modified";
    private const string ContentRange = "Content-Range";
    private const string Location = "Location";
    private const string FellThrough = "fell through";
    private const string Body = "body";
    private const string None = "(none)";

    private const string Css = "/css/site.css";
    private const string Big = "/big.bin";
    private const string BigLength = "3145728";

    private static readonly string FixedLastModified = HttpDate(StaticSite.FixedLastModified);

    // RFC 9110 §15.4.5: a 304 repeats the fields a cache must update (ETag, Date, Vary, Cache-Control, Expires,
    // Content-Location) and "SHOULD NOT generate representation metadata other than the above listed fields";
    // UseStaticFiles sends Content-Type on its 304s as well.
    private static readonly Difference NotModifiedWithoutContentType = new(ContentType, "text/css", None,
        "RFC 9110 §15.4.5: a 304 should not carry representation metadata such as Content-Type");

    // RFC 9110 §8.8.2.1 and §8.8.3: an origin server SHOULD send Last-Modified and ETag for the selected
    // representation. A 412 or 416 is still about that representation (a 416 even carries its current length,
    // §15.5.17), and its validators tell the client whether the file changed under its condition or range.
    // UseStaticFiles sends them only with 200, 206 and 304.
    private static readonly Difference[] ValidatorsOnAnError =
    [
        new(ETag, "absent", "strong", "RFC 9110 §8.8.3: ETag is sent for the selected representation, errors included"),
        new(LastModified, None, FixedLastModified, "RFC 9110 §8.8.2.1: Last-Modified is sent for the selected representation, errors included"),
    ];

    /// <summary>Every request of the oracle, by a name that says what it asks.</summary>
    private static readonly Dictionary<string, OracleCase> Cases = new()
    {
        ["GET a file"] = new("GET", Css, "css/site.css"),
        ["HEAD a file"] = new("HEAD", Css, "css/site.css"),
        ["GET an empty file"] = new("GET", "/empty.txt", "empty.txt"),
        // Several of the middleware's 64 KiB read chunks.
        ["GET a 3 MiB file"] = new("GET", Big, "big.bin"),
        ["GET If-None-Match: its own ETag"] = new("GET", Css, "css/site.css")
        {
            FromFirstResponse = v => [("If-None-Match", v.ETag)],
            Differences = [NotModifiedWithoutContentType],
        },
        ["HEAD If-None-Match: its own ETag"] = new("HEAD", Css, "css/site.css")
        {
            FromFirstResponse = v => [("If-None-Match", v.ETag)],
            Differences = [NotModifiedWithoutContentType],
        },
        ["GET If-None-Match: *"] = new("GET", Css, "css/site.css")
        {
            Headers = [("If-None-Match", "*")],
            Differences = [NotModifiedWithoutContentType],
        },
        ["GET If-None-Match: another tag"] = new("GET", Css, "css/site.css") { Headers = [("If-None-Match", "\"other\"")] },
        // RFC 9110 §13.1.2: "A recipient MUST use the weak comparison function when comparing entity tags for
        // If-None-Match", so W/"x" matches "x" and the client's copy is current; UseStaticFiles compares strongly
        // and sends the whole file again.
        ["GET If-None-Match: its own ETag made weak"] = new("GET", Css, "css/site.css")
        {
            FromFirstResponse = v => [("If-None-Match", "W/" + v.ETag)],
            Differences =
            [
                new(Status, "200", "304", "RFC 9110 §13.1.2: If-None-Match compares weakly"),
                new(ContentType, "text/css", None, "RFC 9110 §15.4.5: no Content-Type on a 304"),
                new(ContentLength, "38", None, "a 304 has no body"),
                new(Body, "all of css/site.css", "empty", "a 304 has no body"),
            ],
        },
        ["GET If-Modified-Since: its Last-Modified"] = new("GET", Css, "css/site.css")
        {
            FromFirstResponse = v => [("If-Modified-Since", v.LastModified)],
            Differences = [NotModifiedWithoutContentType],
        },
        ["GET If-Modified-Since: a day earlier"] = new("GET", Css, "css/site.css")
        {
            Headers = [("If-Modified-Since", HttpDate(StaticSite.FixedLastModified.AddDays(-1)))],
        },
        // RFC 9110 §13.1.3: If-Modified-Since is ignored when If-None-Match is present.
        ["GET If-None-Match: another tag, If-Modified-Since: its Last-Modified"] = new("GET", Css, "css/site.css")
        {
            FromFirstResponse = v => [("If-None-Match", "\"other\""), ("If-Modified-Since", v.LastModified)],
        },
        ["GET If-Match: another tag"] = new("GET", Css, "css/site.css")
        {
            Headers = [("If-Match", "\"other\"")],
            Differences = ValidatorsOnAnError,
        },
        ["GET If-Unmodified-Since: a day earlier"] = new("GET", Css, "css/site.css")
        {
            Headers = [("If-Unmodified-Since", HttpDate(StaticSite.FixedLastModified.AddDays(-1)))],
            Differences = ValidatorsOnAnError,
        },
        ["GET Range: bytes=0-9"] = new("GET", Big, "big.bin") { Headers = [("Range", "bytes=0-9")] },
        ["GET Range: bytes=-10"] = new("GET", Big, "big.bin") { Headers = [("Range", "bytes=-10")] },
        // RFC 9110 §14.2: GET is the only method with range handling; a HEAD gets the whole file's headers.
        ["HEAD Range: bytes=0-9"] = new("HEAD", Big, "big.bin") { Headers = [("Range", "bytes=0-9")] },
        ["GET Range: past the end"] = new("GET", Big, "big.bin")
        {
            Headers = [("Range", "bytes=99999999-")],
            Differences = ValidatorsOnAnError,
        },
        // The README documents single and multipart ranges (RFC 9110 §14.6, §15.3.7.2); UseStaticFiles ignores a
        // Range of more than one range and sends the whole file, which §14.2 allows ("a server MAY ignore the Range
        // header field"). Both are conforming; serving the parts asked for is this middleware's documented choice.
        ["GET Range: two ranges"] = new("GET", Big, "big.bin")
        {
            Headers = [("Range", "bytes=0-9,20-29")],
            Differences =
            [
                new(Status, "200", "206", "README: multipart ranges are served (RFC 9110 §14.6)"),
                new(ContentType, "application/octet-stream", "multipart/byteranges; boundary=<boundary>", "RFC 9110 §14.6"),
                new(ContentLength, BigLength, "288", "the two parts with their headers, not the whole file"),
                new(Body, "all of big.bin", $"multipart: bytes 0-9/{BigLength}, bytes 20-29/{BigLength} of big.bin", "RFC 9110 §14.6"),
            ],
        },
        ["GET If-Range: its own ETag, Range: bytes=0-9"] = new("GET", Big, "big.bin")
        {
            FromFirstResponse = v => [("Range", "bytes=0-9"), ("If-Range", v.ETag)],
        },
        ["GET If-Range: its Last-Modified, Range: bytes=0-9"] = new("GET", Big, "big.bin")
        {
            FromFirstResponse = v => [("Range", "bytes=0-9"), ("If-Range", v.LastModified)],
        },
        ["GET If-Range: another tag, Range: bytes=0-9"] = new("GET", Big, "big.bin")
        {
            Headers = [("Range", "bytes=0-9"), ("If-Range", "\"other\"")],
        },
        ["GET a missing file"] = new("GET", "/css/missing.css"),
        // No content type is mapped to .xyz and neither serves unknown types by default: both fall through.
        ["GET an unknown file type"] = new("GET", "/data.xyz", "data.xyz"),
        ["POST a file"] = new("POST", Css, "css/site.css"),
        ["GET /"] = new("GET", "/", "index.html"),
        ["GET a folder with its slash"] = new("GET", "/docs/", "docs/index.html"),
        ["HEAD a folder with its slash"] = new("HEAD", "/docs/", "docs/index.html"),
        // Both redirect (301) to the slash; Location is compared resolved against the request's URI (RFC 9110
        // §10.2.2), since UseDefaultFiles spells it absolute and this middleware as an absolute path.
        ["GET a folder without its slash"] = new("GET", "/docs", "docs/index.html"),
        ["GET a folder without its slash, with a query"] = new("GET", "/docs?page=2", "docs/index.html"),
        ["GET a folder without a default document"] = new("GET", "/css/"),
        // The default names are the same four in another order: UseDefaultFiles tries default.htm, default.html,
        // index.htm, index.html; DefaultFileNames documents index.html first (the one document nginx and Apache look
        // for by default). Only a folder holding two of them tells.
        ["GET a folder with index.html and default.htm"] = new("GET", "/two-defaults/", "two-defaults/index.html", "two-defaults/default.htm")
        {
            Differences =
            [
                new(Body, "all of two-defaults/default.htm", "all of two-defaults/index.html",
                    "AmpedStaticFileOptions.DefaultFileNames documents index.html first"),
            ],
        },
    };

    private readonly StaticSite _site = new();
    private readonly List<IHost> _oracleHosts = [];
    private readonly List<PhysicalFileProvider> _oracleFiles = [];

    public UseStaticFilesOracleTests()
    {
        _site.WriteFile("data.xyz", "a file of a type nobody maps\n"u8.ToArray());
        // Of the same length, so that only the body tells which one was served.
        _site.WriteFile("two-defaults/index.html", "<p>index.html!</p>\n"u8.ToArray());
        _site.WriteFile("two-defaults/default.htm", "<p>default.htm</p>\n"u8.ToArray());
    }

    public static TheoryData<AmpedMode, string> Requests
    {
        get
        {
            var data = new TheoryData<AmpedMode, string>();
            foreach (var mode in new[] { AmpedMode.Amped, AmpedMode.Sped })
            {
                foreach (var name in Cases.Keys)
                {
                    data.Add(mode, name);
                }
            }
            return data;
        }
    }

    [Theory]
    [MemberData(nameof(Requests))]
    public async Task AnswersAsUseStaticFilesDoes(AmpedMode mode, string request)
    {
        var oracleCase = Cases[request];
        var files = new List<(string Relative, byte[] Bytes)>();
        foreach (var relative in oracleCase.Files)
        {
            files.Add((relative, await File.ReadAllBytesAsync(_site.PathOf(relative))));
        }
        var oracle = await StartUseStaticFilesAsync();
        var amped = await _site.StartAsync(mode);

        var expected = await AnswerAsync(oracle, oracleCase, files);
        var actual = await AnswerAsync(amped, oracleCase, files);

        var mismatches = new List<string>();
        foreach (var difference in oracleCase.Differences)
        {
            if (!expected.ContainsKey(difference.Field) || difference.UseStaticFiles == difference.Amped)
            {
                mismatches.Add($"the listed difference in {difference.Field} is not one");
            }
        }
        foreach (var (field, oracleValue) in expected)
        {
            var ampedValue = actual[field];
            var difference = oracleCase.Differences.SingleOrDefault(d => d.Field == field);
            if (difference is null && oracleValue != ampedValue)
            {
                mismatches.Add($"{field}: UseStaticFiles {oracleValue}, amped {ampedValue}");
            }
            else if (difference is not null && (oracleValue != difference.UseStaticFiles || ampedValue != difference.Amped))
            {
                mismatches.Add($"{field}: expected UseStaticFiles {difference.UseStaticFiles} and amped {difference.Amped} " +
                    $"({difference.Reason}), got UseStaticFiles {oracleValue} and amped {ampedValue}");
            }
        }
        Assert.True(mismatches.Count == 0, string.Join(Environment.NewLine, mismatches));
    }

    /// <summary>
    /// Sends the case's request and describes the answer field by field. A first GET of the same path, to the same
    /// server, gives the validators that conditional requests quote: each server's ETag is its own.
    /// </summary>
    private static async Task<Dictionary<string, string>> AnswerAsync(TestServer server, OracleCase oracleCase, IReadOnlyList<(string Relative, byte[] Bytes)> files)
    {
        var headers = oracleCase.Headers;
        if (oracleCase.FromFirstResponse is { } fromFirst)
        {
            using var first = await server.GetAsync(oracleCase.Path);
            var etag = first.Header("ETag");
            var lastModified = first.Header("Last-Modified");
            Assert.NotNull(etag);
            Assert.NotNull(lastModified);
            headers = [.. headers, .. fromFirst(new Validators(etag, lastModified))];
        }

        using var response = await server.SendAsync(oracleCase.Method, oracleCase.Path, headers);
        var body = await response.BodyAsync();
        var contentType = response.Header("Content-Type");
        var location = response.Header("Location");
        return new Dictionary<string, string>
        {
            [Status] = ((int)response.StatusCode).ToString(CultureInfo.InvariantCulture),
            [ContentType] = contentType is null ? None : WithoutBoundary(contentType),
            [ContentLength] = response.Header("Content-Length") ?? None,
            [ETag] = response.Headers.ETag is null ? "absent" : response.Headers.ETag.IsWeak ? "weak" : "strong",
            [LastModified] = response.Header("Last-Modified") ?? None,
            [ContentRange] = response.Header("Content-Range") ?? None,
            [Location] = location is null ? None : new Uri(response.RequestMessage!.RequestUri!, location).AbsoluteUri,
            [FellThrough] = response.FellThrough() ? "yes" : "no",
            [Body] = await DescribeBodyAsync(body, contentType, response.Header("Content-Range"), files),
        };
    }

    /// <summary>
    /// The body in words that two correct servers share: all of one of the case's files, or a slice of its first
    /// (the one ranges are asked of), or the parts of a multipart body (whose boundary is random, RFC 9110 §14.6),
    /// each checked against that file. Anything else is its length and hash, so two different bodies never read the
    /// same.
    /// </summary>
    private static async Task<string> DescribeBodyAsync(byte[] body, string? contentType, string? contentRange, IReadOnlyList<(string Relative, byte[] Bytes)> files)
    {
        if (body.Length == 0)
        {
            return "empty";
        }
        foreach (var (relative, bytes) in files)
        {
            if (body.AsSpan().SequenceEqual(bytes))
            {
                return "all of " + relative;
            }
        }
        if (files.Count > 0)
        {
            var (relative, file) = files[0];
            if (contentRange is not null && IsSliceOf(body, contentRange, file))
            {
                return $"{contentRange} of {relative}";
            }
            if (contentType is not null && MediaTypeHeaderValue.TryParse(contentType, out var media)
                && media.MediaType.Equals("multipart/byteranges", StringComparison.OrdinalIgnoreCase))
            {
                var reader = new MultipartReader(HeaderUtilities.RemoveQuotes(media.Boundary).Value!, new MemoryStream(body));
                var parts = new List<string>();
                while (await reader.ReadNextSectionAsync() is { } section)
                {
                    using var part = new MemoryStream();
                    await section.Body.CopyToAsync(part);
                    var range = section.Headers!["Content-Range"].ToString();
                    parts.Add(IsSliceOf(part.ToArray(), range, file) ? range : $"{range} (not those bytes)");
                }
                return $"multipart: {string.Join(", ", parts)} of {relative}";
            }
        }
        return $"{body.Length} bytes, SHA-256 {Convert.ToHexString(SHA256.HashData(body))}";
    }

    private static bool IsSliceOf(byte[] bytes, string contentRange, byte[] file)
    {
        if (!ContentRangeHeaderValue.TryParse(contentRange, out var range) || range.From is not { } from || range.To is not { } to
            || to >= file.Length || to - from + 1 != bytes.Length)
        {
            return false;
        }
        return file.AsSpan((int)from, bytes.Length).SequenceEqual(bytes);
    }

    private static string WithoutBoundary(string contentType)
    {
        var boundary = contentType.IndexOf("boundary=", StringComparison.OrdinalIgnoreCase);
        return boundary < 0 ? contentType : contentType[..(boundary + "boundary=".Length)] + "<boundary>";
    }

    private static string HttpDate(DateTimeOffset date) => date.ToUniversalTime().ToString("R", CultureInfo.InvariantCulture);

    /// <summary>
    /// What a user writes to get static files with default documents from ASP.NET Core itself: <c>UseDefaultFiles</c>
    /// (which rewrites a folder with a default document to that document, and redirects a folder without its slash)
    /// ahead of <c>UseStaticFiles</c>, both over the same root, everything else at its default. The terminal app does
    /// what <see cref="StaticSite"/>'s does, so a request that either lets through compares as the same 404.
    /// </summary>
    private async Task<TestServer> StartUseStaticFilesAsync()
    {
        var files = new PhysicalFileProvider(_site.Root);
        _oracleFiles.Add(files);
        var host = new HostBuilder()
            .ConfigureWebHost(web => web
                .UseTestServer()
                .Configure(app =>
                {
                    app.UseDefaultFiles(new DefaultFilesOptions { FileProvider = files });
                    app.UseStaticFiles(new StaticFileOptions { FileProvider = files });
                    app.Run(context =>
                    {
                        context.Response.StatusCode = StatusCodes.Status404NotFound;
                        context.Response.Headers[StaticSite.FellThroughHeader] = "1";
                        return Task.CompletedTask;
                    });
                }))
            .Build();
        _oracleHosts.Add(host);
        await host.StartAsync();
        return host.GetTestServer();
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        try
        {
            foreach (var host in _oracleHosts)
            {
                await host.StopAsync();
                host.Dispose();
            }
            foreach (var files in _oracleFiles)
            {
                files.Dispose();
            }
        }
        finally
        {
            await _site.DisposeAsync();
        }
    }

    private sealed record Validators(string ETag, string LastModified);

    /// <summary>A field in which the two answer differently by design: what each answers, and why.</summary>
    private sealed record Difference(string Field, string UseStaticFiles, string Amped, string Reason);

    /// <summary>
    /// A request: <paramref name="Files"/> are the files (below the root) whose bytes the answer may carry, the one
    /// asked for first; <see cref="Headers"/> are sent as they are, and
    /// <see cref="FromFirstResponse"/> adds headers that quote the validators of a first GET.
    /// </summary>
    private sealed record OracleCase(string Method, string Path, params string[] Files)
    {
        public (string Name, string Value)[] Headers { get; init; } = [];

        public Func<Validators, (string Name, string Value)[]>? FromFirstResponse { get; init; }

        public Difference[] Differences { get; init; } = [];
    }
}
