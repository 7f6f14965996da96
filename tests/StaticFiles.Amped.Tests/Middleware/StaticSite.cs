using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Hosting;

namespace StaticFiles.Amped.Tests.Middleware;

/// <summary>
/// A realistic site on disk for end-to-end tests of <c>UseAmpedStaticFiles</c>: a fresh temp folder per instance
/// (so per test), holding the served root <c>site/</c> and, beside it, <c>outside.txt</c>, which no request may
/// ever reach. <see cref="StartAsync"/> starts a <see cref="TestServer"/> whose pipeline is the middleware followed
/// by a terminal app that answers 404: a request the middleware does not serve shows up as that 404.
/// Disposing stops every server started and deletes the folder. (xunit 2 does not dispose an IAsyncDisposable test
/// class: the tests own one through <see cref="IAsyncLifetime"/>.)
/// </summary>
public sealed class StaticSite : IAsyncDisposable
{
    /// <summary>The length of <c>big.bin</c>: 3 MiB, several of the middleware's 64 KiB chunks.</summary>
    public const int BigLength = 3 * 1024 * 1024;

    /// <summary>What <c>outside.txt</c> holds; a response body must never contain it.</summary>
    public const string OutsideText = "TOP SECRET: this file lies outside the served root.\n";

    /// <summary>
    /// The modification time every file gets: far enough in the past that Last-Modified is a strong validator
    /// (If-Range by date) and fixed so the header can be compared exactly.
    /// </summary>
    public static readonly DateTimeOffset FixedLastModified = new(2021, 3, 4, 5, 6, 7, TimeSpan.Zero);

    public static readonly byte[] IndexHtml = Encoding.UTF8.GetBytes(
        "<!doctype html>\n<html><head><link rel=\"stylesheet\" href=\"css/site.css\"></head><body>home</body></html>\n");
    public static readonly byte[] DocsIndexHtml = Encoding.UTF8.GetBytes("<!doctype html>\n<html><body>docs</body></html>\n");
    public static readonly byte[] SiteCss = Encoding.UTF8.GetBytes("body { color: #333; margin: 0 auto; }\n");
    public static readonly byte[] AppJs = Encoding.UTF8.GetBytes("document.addEventListener('DOMContentLoaded', () => console.log('ready'));\n");
    public static readonly byte[] LogoPng = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52, 0x00, 0xFF, 0x10, 0x80];
    public static readonly byte[] DotEnv = Encoding.UTF8.GetBytes("DB_PASSWORD=hunter2\n");
    public static readonly byte[] GitConfig = Encoding.UTF8.GetBytes("[core]\n\trepositoryformatversion = 0\n");
    public static readonly byte[] SecurityTxt = Encoding.UTF8.GetBytes("Contact: mailto:security@example.com\n");
    public static readonly byte[] NoExt = Encoding.UTF8.GetBytes("a file without an extension\n");
    public static readonly byte[] SecretUnknown = Encoding.UTF8.GetBytes("a file of a type nobody maps\n");

    /// <summary><c>big.bin</c>: deterministic pseudo-random bytes (xorshift64*, fixed seed).</summary>
    public static readonly byte[] Big = MakeBig();

    /// <summary>Every file of the root, by its path relative to the root.</summary>
    public static readonly IReadOnlyDictionary<string, byte[]> Files = new Dictionary<string, byte[]>
    {
        ["index.html"] = IndexHtml,
        ["css/site.css"] = SiteCss,
        ["js/app.js"] = AppJs,
        ["img/logo.png"] = LogoPng,
        ["docs/index.html"] = DocsIndexHtml,
        ["empty.txt"] = [],
        ["big.bin"] = Big,
        [".env"] = DotEnv,
        [".git/config"] = GitConfig,
        [".well-known/security.txt"] = SecurityTxt,
        ["noext"] = NoExt,
        ["secret.unknownext"] = SecretUnknown,
    };

    private readonly List<IHost> _hosts = [];

    public StaticSite()
    {
        Temp = Directory.CreateTempSubdirectory("amped-mw-").FullName;
        Root = Path.Combine(Temp, "site");
        foreach (var (relative, bytes) in Files)
        {
            WriteFile(relative, bytes);
        }
        Outside = Path.Combine(Temp, "outside.txt");
        File.WriteAllText(Outside, OutsideText);
        File.SetLastWriteTimeUtc(Outside, FixedLastModified.UtcDateTime);

        // An absolute and a relative symlink that leave the root, a folder symlink that climbs out of it, and a
        // relative symlink that stays inside (openat2's RESOLVE_BENEATH refuses every absolute symlink).
        File.CreateSymbolicLink(Path.Combine(Root, "link-out.txt"), Outside);
        File.CreateSymbolicLink(Path.Combine(Root, "link-out-rel.txt"), "../outside.txt");
        Directory.CreateSymbolicLink(Path.Combine(Root, "link-up"), "..");
        File.CreateSymbolicLink(Path.Combine(Root, "link-in.txt"), "css/site.css");
    }

    /// <summary>The two designs every test runs under.</summary>
    public static TheoryData<AmpedMode> Modes => new() { AmpedMode.Amped, AmpedMode.Sped };

    /// <summary>The temp folder: <see cref="Root"/> and <see cref="Outside"/> are inside it.</summary>
    public string Temp { get; }

    /// <summary>The served root, <c>{Temp}/site</c>.</summary>
    public string Root { get; }

    /// <summary><c>{Temp}/outside.txt</c>, beside the root.</summary>
    public string Outside { get; }

    /// <summary>The full path of a file of the root.</summary>
    public string PathOf(string relative) => Path.Combine(Root, relative);

    /// <summary>Writes a file below the root (creating its folder) with <see cref="FixedLastModified"/> as its mtime.</summary>
    public void WriteFile(string relative, byte[] bytes)
    {
        var path = PathOf(relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, bytes);
        File.SetLastWriteTimeUtc(path, FixedLastModified.UtcDateTime);
    }

    /// <summary>
    /// Starts a server over <see cref="Root"/> in <paramref name="mode"/>; <paramref name="configure"/> changes the
    /// other options. The terminal app after the middleware answers 404 and sets <c>X-Fell-Through: 1</c>.
    /// </summary>
    public Task<TestServer> StartAsync(AmpedMode mode, Action<AmpedStaticFileOptions>? configure = null)
        => StartAsync(mode, Root, configure);

    /// <summary>
    /// As <see cref="StartAsync(AmpedMode, Action{AmpedStaticFileOptions}?)"/>, over another folder, with
    /// <paramref name="before"/> run on the pipeline ahead of the middleware.
    /// </summary>
    public async Task<TestServer> StartAsync(AmpedMode mode, string rootPath, Action<AmpedStaticFileOptions>? configure = null, Action<IApplicationBuilder>? before = null)
    {
        var options = new AmpedStaticFileOptions { RootPath = rootPath, Mode = mode };
        configure?.Invoke(options);
        var host = new HostBuilder()
            .ConfigureWebHost(web => web
                .UseTestServer()
                .Configure(app =>
                {
                    before?.Invoke(app);
                    app.UseAmpedStaticFiles(options);
                    app.Run(context =>
                    {
                        context.Response.StatusCode = StatusCodes.Status404NotFound;
                        context.Response.Headers[FellThroughHeader] = "1";
                        return Task.CompletedTask;
                    });
                }))
            .Build();
        _hosts.Add(host);
        await host.StartAsync();
        return host.GetTestServer();
    }

    /// <summary>The header the terminal app sets: the middleware let the request through.</summary>
    public const string FellThroughHeader = "X-Fell-Through";

    public async ValueTask DisposeAsync()
    {
        try
        {
            foreach (var host in _hosts)
            {
                // StopAsync fires ApplicationStopped, which disposes the middleware's helpers, loop and root fd.
                await host.StopAsync();
                host.Dispose();
            }
            _hosts.Clear();
        }
        finally
        {
            Directory.Delete(Temp, recursive: true);
        }
    }

    private static byte[] MakeBig()
    {
        var bytes = new byte[BigLength];
        var state = 0x9E3779B97F4A7C15UL;
        for (var i = 0; i < bytes.Length; i += 8)
        {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            var word = state * 0x2545F4914F6CDD1DUL;
            BitConverter.TryWriteBytes(bytes.AsSpan(i), word);
        }
        return bytes;
    }
}
