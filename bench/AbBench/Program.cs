using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;

// The harness drives taskset, prlimit, wrk and h2load and reads /proc: Linux only.
[assembly: SupportedOSPlatform("linux")]

namespace AbBench;

/// <summary>Entry point: parses the options, checks the tools, gets the app, runs the scenarios.</summary>
internal static class Program
{
    private const string SolutionFile = "EpollTransport.sln";

    private static async Task<int> Main(string[] args)
    {
        var parsed = BenchCommand.Create().Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var error in parsed.Errors)
            {
                Console.Error.WriteLine($"AbBench: {error.Message}");
            }
            Console.Error.WriteLine("Run with --help for usage.");
            return 2;
        }
        // The root command has no action of its own: an action here is --help's or --version's.
        if (parsed.Action is not null)
        {
            return await parsed.InvokeAsync();
        }
        var options = BenchCommand.Bind(parsed, args);

        using var interrupted = new CancellationTokenSource();
        void Interrupt(string what)
        {
            if (!interrupted.IsCancellationRequested)
            {
                Console.Error.WriteLine();
                Console.Error.WriteLine($"{what}: stopping the server and the load generator.");
                interrupted.Cancel();
            }
            Processes.KillAll();
        }
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            Interrupt("Interrupted");
        };
        // SIGTERM and SIGHUP would otherwise end the harness at once and leave its children running.
        using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c =>
        {
            c.Cancel = true;
            Interrupt("Terminated");
        });
        using var onHangUp = PosixSignalRegistration.Create(PosixSignal.SIGHUP, c =>
        {
            c.Cancel = true;
            Interrupt("Hung up");
        });
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Processes.KillAll();

        try
        {
            return await RunAsync(options, interrupted.Token);
        }
        catch (Exception) when (interrupted.IsCancellationRequested)
        {
            Console.Error.WriteLine("Stopped; no result written for the scenario that was running.");
            return 130;
        }
        catch (BenchException e)
        {
            Console.Error.WriteLine($"AbBench: {e.Message}");
            return e.ExitCode;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"AbBench: unexpected failure: {e}");
            return 1;
        }
        finally
        {
            Processes.KillAll();
        }
    }

    private static async Task<int> RunAsync(Options options, CancellationToken ct)
    {
        EnsureTools(options);

        var repoRoot = FindRepoRoot(Environment.CurrentDirectory) ?? FindRepoRoot(AppContext.BaseDirectory);
        var (appPath, appDescription) = await GetAppAsync(options, repoRoot, ct);

        var resultsDir = options.ResultsDir is { } dir ? Path.GetFullPath(dir)
            : repoRoot is not null ? Path.Combine(repoRoot, "bench", "results")
            : options.NoSave ? ""
            : throw new BenchException($"cannot find {SolutionFile} above the current directory for the default results folder; pass --results DIR or --no-save.", 2);

        var scriptsDir = Path.Combine(AppContext.BaseDirectory, "scripts");
        if (!File.Exists(Path.Combine(scriptsDir, "report.lua")))
        {
            throw new BenchException($"the wrk scripts are missing next to AbBench.dll ({scriptsDir}); rebuild bench/AbBench.");
        }

        var clockTicks = long.TryParse(await Processes.TryReadAsync("getconf", ["CLK_TCK"], ct), NumberStyles.None, CultureInfo.InvariantCulture, out var ticks) && ticks > 0
            ? ticks
            : 100;

        using var progress = new Progress();
        var context = new BenchContext
        {
            Progress = progress,
            Options = options,
            RepoRoot = repoRoot,
            AppPath = appPath,
            AppDescription = appDescription,
            DotnetPath = DotnetHost(),
            ScriptsDir = scriptsDir,
            ResultsDir = resultsDir,
            ClockTicksPerSecond = clockTicks,
            LoadNoFileLimit = Math.Min(FdLimits.Read().Hard, 20000),
            Cancellation = ct,
        };
        var facts = await RunFacts.GatherAsync(context);

        var failed = new List<string>();
        foreach (var scenario in options.Scenarios)
        {
            try
            {
                var result = await Runner.RunAsync(context, scenario);
                result.FinishedUtc = DateTime.UtcNow;
                Report.Print(result);
                if (!options.NoSave)
                {
                    var saved = Report.Save(result, context, facts);
                    Console.WriteLine($"Saved {Shown(repoRoot, saved)} and its .svg; {Shown(repoRoot, Path.Combine(resultsDir, "LATEST.md"))} updated.");
                }
            }
            catch (BenchException e) when (!ct.IsCancellationRequested && e.ExitCode != 2)
            {
                Console.Error.WriteLine();
                Console.Error.WriteLine(e is RefusedException
                    ? $"REFUSED: {scenario.Name}: {e.Message}\nNo figures reported and no result file written for {scenario.Name}."
                    : $"FAILED: {scenario.Name}: {e.Message}\nNo result file written for {scenario.Name}.");
                failed.Add(scenario.Name);
            }
        }

        if (failed.Count > 0 && options.Scenarios.Count > 1)
        {
            Console.Error.WriteLine($"Refused or failed: {string.Join(", ", failed)}.");
        }
        return failed.Count == 0 ? 0 : 1;
    }

    /// <summary>
    /// taskset and prlimit must exist, and the load generators the scenarios use (and nginx for proxy); for a missing one the harness says
    /// how to install it and exits, rather than changing the machine itself.
    /// </summary>
    private static void EnsureTools(Options options)
    {
        var missingUtil = new[] { "taskset", "prlimit" }.Where(t => Processes.FindOnPath(t) is null).ToArray();
        if (missingUtil.Length > 0)
        {
            throw new BenchException($"{string.Join(" and ", missingUtil)} not found; they come with util-linux. Install it as root with:\napt-get install -y util-linux", 2);
        }
        var missing = new (LoadTool Tool, string Command, string Package, Func<string?> Find)[]
            {
                (LoadTool.Wrk, "wrk", "wrk", () => Processes.FindOnPath("wrk")),
                (LoadTool.H2Load, "h2load", "nghttp2-client", () => Processes.FindOnPath("h2load")),
                (LoadTool.Nginx, "nginx", "nginx-light", NginxServer.Find),
            }
            .Where(t => options.Scenarios.Any(s => s.Tool.HasFlag(t.Tool)) && t.Find() is null)
            .ToArray();
        if (missing.Length > 0)
        {
            throw new BenchException($"{string.Join(" and ", missing.Select(t => t.Command))} not found. Install {(missing.Length == 1 ? "it" : "them")} as root with:\napt-get install -y {string.Join(' ', missing.Select(t => t.Package))}", 2);
        }
    }

    /// <summary>--app, or the harness's own Release build of samples/WebApp.</summary>
    private static async Task<(string Path, string Description)> GetAppAsync(Options options, string? repoRoot, CancellationToken ct)
    {
        if (options.App is { } app)
        {
            var full = Path.GetFullPath(app);
            return File.Exists(full)
                ? (full, $"prebuilt `{Path.GetFileName(full)}` given with --app")
                : throw new BenchException($"--app '{app}': no such file.", 2);
        }
        if (repoRoot is null)
        {
            throw new BenchException($"cannot find {SolutionFile} above the current directory to build samples/WebApp; run inside the repository or pass --app PATH.", 2);
        }

        Console.WriteLine("Building the sample: dotnet build samples/WebApp/WebApp.csproj -c Release");
        var build = Processes.Start(new ProcessStartInfo(DotnetHost())
        {
            WorkingDirectory = repoRoot,
            ArgumentList = { "build", "samples/WebApp/WebApp.csproj", "-c", "Release" },
        });
        await Processes.WaitForExitAsync(build, TimeSpan.FromMinutes(10), "the build of samples/WebApp did not finish within 10 minutes.", 1, ct);
        if (build.ExitCode != 0)
        {
            throw new BenchException($"the build of samples/WebApp failed (exit code {build.ExitCode}).");
        }

        var path = Path.Combine(repoRoot, "samples", "WebApp", "bin", "Release", "net10.0", "WebApp.dll");
        return File.Exists(path)
            ? (path, "`samples/WebApp/bin/Release/net10.0/WebApp.dll`, built by the harness (`dotnet build samples/WebApp/WebApp.csproj -c Release`)")
            : throw new BenchException($"the build succeeded but {path} is not there.");
    }

    private static string? FindRepoRoot(string start)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, SolutionFile)))
            {
                return dir.FullName;
            }
        }
        return null;
    }

    /// <summary>The dotnet host that runs the harness, so that the server runs on the same runtime.</summary>
    private static string DotnetHost() =>
        Environment.ProcessPath is { } path && Path.GetFileNameWithoutExtension(path) == "dotnet" ? path : "dotnet";

    public static bool IsRoot()
    {
        var uid = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("Uid:", StringComparison.Ordinal));
        // Uid: real effective saved filesystem.
        return uid?.Split('\t', StringSplitOptions.RemoveEmptyEntries) is [_, _, var effective, ..] && effective == "0";
    }

    private static string Shown(string? repoRoot, string path) =>
        repoRoot is not null && Path.GetRelativePath(repoRoot, path) is var relative && !relative.StartsWith("..", StringComparison.Ordinal)
            ? relative
            : path;
}
