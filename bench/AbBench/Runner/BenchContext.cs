using System.Globalization;
using System.Runtime.InteropServices;

namespace AbBench;

/// <summary>What every scenario needs: the options, where things are, and the machine's limits.</summary>
internal sealed class BenchContext
{
    public required Options Options { get; init; }

    /// <summary>The repository root (the folder of EpollTransport.sln), if the harness runs inside it.</summary>
    public required string? RepoRoot { get; init; }

    /// <summary>Full path of WebApp.dll.</summary>
    public required string AppPath { get; init; }

    /// <summary>Where the app came from, for the result file (no machine paths).</summary>
    public required string AppDescription { get; init; }

    public required string DotnetPath { get; init; }

    /// <summary>The folder of the wrk Lua scripts, next to AbBench.dll.</summary>
    public required string ScriptsDir { get; init; }

    public required string ResultsDir { get; init; }

    public required long ClockTicksPerSecond { get; init; }

    /// <summary>The open-file limit wrk and h2load run under: min(hard limit, 20000).</summary>
    public required int LoadNoFileLimit { get; init; }

    public required CancellationToken Cancellation { get; init; }

    /// <summary>The progress line, and the way to print while a scenario runs.</summary>
    public required Progress Progress { get; init; }

    /// <summary>Refuses to start a load of <paramref name="connections"/> that the open-file limits cannot hold.</summary>
    public void CheckLoadFdLimit(int connections)
    {
        var limits = FdLimits.Read();
        if (LoadNoFileLimit < connections + 100 || limits.Soft < connections + 200)
        {
            throw new BenchException(
                $"{connections} connections need about {connections + 200} open files, but the hard limit is {limits.Hard} (and the load generator gets {LoadNoFileLimit}). Raise it (ulimit -Hn, /etc/security/limits.conf) or use fewer --connections.");
        }
    }

    /// <summary>How each variant's server is started, for the result file: the app, its arguments, then <paramref name="extraArgs"/>.</summary>
    public void AddServerCommands(ScenarioResult result, IEnumerable<Variant> variants, IReadOnlyList<string> extraArgs, bool https = false)
    {
        foreach (var v in variants)
        {
            result.Commands.Add(ServerProcess.DisplayCommand(this, [.. v.ArgList, .. extraArgs], https) + $"   # {v.Name}");
        }
    }
}

/// <summary>Facts about the machine and the source tree, for the result file.</summary>
internal sealed record RunFacts(string Commit, string Nproc, string Kernel, string CpuModel, string Runtime, string LoadTools)
{
    public static async Task<RunFacts> GatherAsync(BenchContext context)
    {
        var ct = context.Cancellation;
        var commit = "unknown (not a git checkout)";
        if (context.RepoRoot is { } root && await Processes.TryReadAsync("git", ["rev-parse", "--short", "HEAD"], ct, root) is { } head)
        {
            // Result files written by earlier runs do not make the tree "dirty": they are not what is measured.
            var pathspec = new List<string> { "status", "--porcelain", "--", "." };
            var results = Path.GetRelativePath(root, context.ResultsDir);
            if (!results.StartsWith("..", StringComparison.Ordinal) && !Path.IsPathRooted(results) && results != ".")
            {
                pathspec.Add($":(exclude){results}");
            }
            var status = await Processes.TryReadAsync("git", pathspec, ct, root);
            commit = head + (status is null ? " (status unknown)" : status.Length > 0 ? "+dirty" : "");
        }

        var nproc = await Processes.TryReadAsync("nproc", [], ct) ?? Environment.ProcessorCount.ToString(CultureInfo.InvariantCulture);
        var kernel = ReadOrNull("/proc/sys/kernel/osrelease")?.Trim() ?? "unknown";
        var cpu = ReadOrNull("/proc/cpuinfo")?.Split('\n')
            .FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown";

        var tools = new List<string>();
        if (await Processes.TryReadAsync("sh", ["-c", "wrk -v 2>&1 | head -n 1"], ct) is { Length: > 0 } wrk)
        {
            tools.Add(wrk.Split(" Copyright", 2)[0]);
        }
        if (await Processes.TryReadAsync("h2load", ["--version"], ct) is { Length: > 0 } h2load)
        {
            tools.Add(h2load);
        }
        return new RunFacts(commit, nproc, kernel, cpu, RuntimeInformation.FrameworkDescription, string.Join("; ", tools));
    }

    private static string? ReadOrNull(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
