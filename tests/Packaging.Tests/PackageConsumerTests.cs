using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Packaging.Tests;

/// <summary>
/// A new web app, outside the repository, restores the packages from the temporary feed, builds, and serves a
/// static file (UseAmpedStaticFiles) and an endpoint on the epoll transport (UseEpollTransport).
/// </summary>
[Collection(PackedPackagesCollection.Name)]
public sealed class PackageConsumerTests(PackedPackages packages, ITestOutputHelper output)
{
    private static readonly TimeSpan BuildTimeout = TimeSpan.FromMinutes(3);
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(20);
    private const string StartedLine = "consumer-app-started";

    [Fact]
    public async Task WebAppReferencingThePackages_ServesAStaticFileAndAnEndpoint()
    {
        output.WriteLine(packages.PackLog);
        var stopwatch = Stopwatch.StartNew();
        var root = Path.Combine(packages.TempRoot, "consumer");
        var app = Path.Combine(root, "app");
        var site = Path.Combine(root, "site");
        var nugetPackages = Path.Combine(root, "nuget-packages");
        Directory.CreateDirectory(app);
        Directory.CreateDirectory(site);

        // Nothing from above the temp folder (a Directory.Build.props in /tmp, say) reaches the app's build.
        foreach (var file in new[] { "Directory.Build.props", "Directory.Build.targets", "Directory.Packages.props" })
        {
            await File.WriteAllTextAsync(Path.Combine(root, file), "<Project />\n");
        }
        await File.WriteAllTextAsync(Path.Combine(app, "nuget.config"), NuGetConfig(packages.Feed, nugetPackages));
        await File.WriteAllTextAsync(Path.Combine(app, "ConsumerApp.csproj"), ProjectFile(packages.Version));
        await File.WriteAllTextAsync(Path.Combine(app, "Program.cs"), ProgramFile);

        // One file, larger than the middleware's content cache takes (128 KiB), so its body is read from disk.
        var content = new StringBuilder();
        for (var line = 0; content.Length < 200_000; line++)
        {
            content.Append(FormattableString.Invariant($"line {line:D6} of a file served from the {packages.Version} packages\n"));
        }
        var expected = Encoding.ASCII.GetBytes(content.ToString());
        await File.WriteAllBytesAsync(Path.Combine(site, "hello.txt"), expected);

        // A NuGet cache of its own: the packages of the feed are extracted there and deleted with it.
        var build = DotnetProcess.StartInfo(app, "build", "-c", "Release", "--disable-build-servers");
        build.Environment["NUGET_PACKAGES"] = nugetPackages;
        await DotnetProcess.RunAsync(build, BuildTimeout, output);

        var port = FreeLoopbackPort();
        var run = DotnetProcess.StartInfo(app, Path.Combine(app, "bin", "Release", "net10.0", "ConsumerApp.dll"),
            "--urls", $"http://127.0.0.1:{port}", "--SiteRoot", site);
        foreach (var name in new[] { "ASPNETCORE_URLS", "ASPNETCORE_HTTP_PORTS", "ASPNETCORE_HTTPS_PORTS", "DOTNET_URLS" })
        {
            run.Environment.Remove(name);
        }
        run.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var process = new DotnetProcess.Started(run, line =>
        {
            if (line == StartedLine)
            {
                started.TrySetResult();
            }
        });
        try
        {
            var first = await Task.WhenAny(started.Task, process.Exited, Task.Delay(StartTimeout));
            Assert.True(first == started.Task,
                (first == process.Exited ? $"The app exited with code {process.Process.ExitCode} before it started." : $"The app did not start within {StartTimeout.TotalSeconds} s.")
                + $" Its output:\n{process.Output}");

            using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(15) };

            using (var response = await client.GetAsync("hello.txt"))
            {
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
                Assert.NotNull(response.Headers.ETag);
                var body = await response.Content.ReadAsByteArrayAsync();
                Assert.Equal(expected.Length, body.Length);
                Assert.True(expected.AsSpan().SequenceEqual(body), "The static file's bytes differ from the file's.");
            }

            // Kestrel binds with the last registered transport that takes the end point: the epoll one.
            Assert.Equal("Hello from EpollTransportFactory", await client.GetStringAsync("hello"));

            // SIGTERM: the host stops gracefully and the process exits with code 0.
            await SigtermAsync(process.Process.Id);
            Assert.True(await process.WaitForExitAsync(StopTimeout), $"The app did not stop within {StopTimeout.TotalSeconds} s of SIGTERM. Its output:\n{process.Output}");
            Assert.True(process.Process.ExitCode == 0, $"The app exited with code {process.Process.ExitCode}. Its output:\n{process.Output}");
        }
        finally
        {
            output.WriteLine("--- the app's output ---");
            output.WriteLine(process.Output);
            output.WriteLine($"({stopwatch.Elapsed.TotalSeconds:F1} s in all)");
        }
    }

    private static int FreeLoopbackPort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
    }

    /// <summary>SIGTERM through kill(1): .NET's Process.Kill only sends SIGKILL, and P/Invoke stays in the libraries' Interop/.</summary>
    private static async Task SigtermAsync(int pid)
    {
        using var kill = Process.Start("kill", ["-s", "TERM", pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        await kill.WaitForExitAsync();
        Assert.Equal(0, kill.ExitCode);
    }

    // The local feed serves the two packages (and only it: package source mapping), nuget.org anything else.
    private static string NuGetConfig(string feed, string globalPackages) => $"""
        <?xml version="1.0" encoding="utf-8"?>
        <configuration>
          <packageSources>
            <clear />
            <add key="local" value="{feed}" />
            <add key="nuget.org" value="https://api.nuget.org/v3/index.json" protocolVersion="3" />
          </packageSources>
          <packageSourceMapping>
            <packageSource key="local">
              <package pattern="EpollTransport" />
              <package pattern="StaticFiles.Amped" />
            </packageSource>
            <packageSource key="nuget.org">
              <package pattern="*" />
            </packageSource>
          </packageSourceMapping>
          <fallbackPackageFolders>
            <clear />
          </fallbackPackageFolders>
          <config>
            <add key="globalPackagesFolder" value="{globalPackages}" />
          </config>
        </configuration>
        """;

    // Only StaticFiles.Amped is referenced: EpollTransport comes in as its dependency, which is part of the test.
    private static string ProjectFile(string version) => $"""
        <Project Sdk="Microsoft.NET.Sdk.Web">
          <PropertyGroup>
            <TargetFramework>net10.0</TargetFramework>
            <Nullable>enable</Nullable>
            <ImplicitUsings>enable</ImplicitUsings>
            <InvariantGlobalization>true</InvariantGlobalization>
            <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
            <MSBuildTreatWarningsAsErrors>true</MSBuildTreatWarningsAsErrors>
            <!-- No vulnerability lookup: the build works where nuget.org cannot be reached. -->
            <NuGetAudit>false</NuGetAudit>
          </PropertyGroup>
          <ItemGroup>
            <PackageReference Include="StaticFiles.Amped" Version="{version}" />
          </ItemGroup>
        </Project>
        """;

    private const string ProgramFile = $$"""
        using Microsoft.AspNetCore.Connections;
        using StaticFiles.Amped;

        var builder = WebApplication.CreateBuilder(args);
        builder.WebHost.UseEpollTransport();

        var app = builder.Build();
        app.UseAmpedStaticFiles(new AmpedStaticFileOptions { RootPath = app.Configuration["SiteRoot"] });
        app.MapGet("/hello", (HttpContext context) =>
            "Hello from " + context.RequestServices.GetServices<IConnectionListenerFactory>().Last().GetType().Name);
        app.Lifetime.ApplicationStarted.Register(() => Console.WriteLine("{{StartedLine}}"));
        app.Run();
        """;
}
