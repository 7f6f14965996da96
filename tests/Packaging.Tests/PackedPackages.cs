using System.Reflection;
using Xunit.Sdk;

namespace Packaging.Tests;

/// <summary>
/// Packs src/Transport.Epoll and src/StaticFiles.Amped, as built in this test assembly's configuration, into a
/// temporary feed with a version of their own, so that no NuGet cache can hold a stale package of that version.
/// </summary>
public sealed class PackedPackages : IAsyncLifetime
{
    public static readonly TimeSpan PackTimeout = TimeSpan.FromMinutes(2);

    private readonly IMessageSink _diagnostics;

    public PackedPackages(IMessageSink diagnostics)
    {
        _diagnostics = diagnostics;
        RepositoryRoot = FindRepositoryRoot();
        Configuration = typeof(PackedPackages).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";
        Version = $"0.0.0-test.{DateTime.UtcNow:yyyyMMddHHmmss}.{Environment.ProcessId}";
        TempRoot = Path.Combine(Path.GetTempPath(), $"epoll-packaging-{Guid.NewGuid():N}");
        Feed = Path.Combine(TempRoot, "feed");
    }

    public string RepositoryRoot { get; }

    /// <summary>The configuration the src projects were built in (this assembly's), and packed from.</summary>
    public string Configuration { get; }

    /// <summary>The version both packages were packed with.</summary>
    public string Version { get; }

    /// <summary>Everything the tests write goes under this folder; it is deleted at the end.</summary>
    public string TempRoot { get; }

    /// <summary>The folder holding the .nupkg and .snupkg files.</summary>
    public string Feed { get; }

    /// <summary>What `dotnet pack` printed, for the tests' output.</summary>
    public string PackLog { get; private set; } = "";

    public string PackagePath(string id) => Path.Combine(Feed, $"{id}.{Version}.nupkg");

    public string SymbolPackagePath(string id) => Path.Combine(Feed, $"{id}.{Version}.snupkg");

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(Feed);
        var log = new StringWriterOutput();
        foreach (var project in new[] { "src/Transport.Epoll/Transport.Epoll.csproj", "src/StaticFiles.Amped/StaticFiles.Amped.csproj" })
        {
            // -\-no-build: the build output the solution build (or this project's references) made is packed as it is,
            // so packing writes nothing into the repository; the nuspec it writes goes to the temp folder too.
            var start = DotnetProcess.StartInfo(RepositoryRoot,
                "pack", Path.Combine(RepositoryRoot, project), "-c", Configuration, "--no-build", "--disable-build-servers",
                "-o", Feed, $"-p:Version={Version}", $"-p:NuspecOutputPath={Path.Combine(TempRoot, "nuspec")}{Path.DirectorySeparatorChar}");
            await DotnetProcess.RunAsync(start, PackTimeout, log);
        }
        PackLog = log.Text;
        _diagnostics.OnMessage(new DiagnosticMessage($"Packaging.Tests: packed version {Version} ({Configuration}) into {Feed}"));
    }

    public Task DisposeAsync()
    {
        try
        {
            Directory.Delete(TempRoot, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _diagnostics.OnMessage(new DiagnosticMessage($"Packaging.Tests: could not delete {TempRoot}: {e.Message}"));
        }
        return Task.CompletedTask;
    }

    private static string FindRepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "EpollTransport.sln")))
            {
                return directory.FullName;
            }
        }
        throw new InvalidOperationException($"No EpollTransport.sln above {AppContext.BaseDirectory}.");
    }

    /// <summary>Collects what <see cref="DotnetProcess.RunAsync"/> reports while no test's output is at hand.</summary>
    private sealed class StringWriterOutput : ITestOutputHelper
    {
        private readonly System.Text.StringBuilder _text = new();

        public string Text => _text.ToString();

        public void WriteLine(string message) => _text.AppendLine(message);

        public void WriteLine(string format, params object[] args) => _text.AppendLine(string.Format(null, format, args));
    }
}

[CollectionDefinition(Name)]
public sealed class PackedPackagesCollection : ICollectionFixture<PackedPackages>
{
    public const string Name = "Packed packages";
}
