using System.Globalization;

namespace AbBench;

/// <summary>
/// The page cache of a set of files, driven with standard tools so that the bench needs no P/Invoke: GNU dd drops
/// a file's cached pages (<c>dd if=FILE iflag=nocache count=0</c> is posix_fadvise(POSIX_FADV_DONTNEED) over the
/// whole file, coreutils' documented way to drop a file's cache), util-linux fincore tells how much of it is
/// resident, and reading the files fills it.
/// </summary>
internal static class PageCache
{
    /// <summary>dd runs as one shell loop per batch, the batches in parallel: one process per file would be slow.</summary>
    private const int EvictBatches = 8;
    private const int FincoreBatch = 1000;
    private const string EvictLoop = "for f do dd if=\"$f\" iflag=nocache count=0 status=none || exit 1; done";
    private static readonly TimeSpan ToolTimeout = TimeSpan.FromMinutes(2);

    /// <summary>The command that evicts one file, for the result file.</summary>
    public const string EvictCommand = "sync; dd if=FILE iflag=nocache count=0 status=none   # per file of the cold set";

    /// <summary>Drops the files' pages from the page cache: sync first (DONTNEED drops only clean pages), then dd.</summary>
    public static async Task EvictAsync(string root, IReadOnlyList<string> files, CancellationToken ct)
    {
        var sync = await Processes.RunAsync("sync", [], ToolTimeout, ct);
        if (sync.ExitCode != 0)
        {
            throw new BenchException($"sync failed (exit code {sync.ExitCode}):\n{sync.Tail()}");
        }
        var batches = files.Chunk(Math.Max(1, (files.Count + EvictBatches - 1) / EvictBatches));
        var runs = await Task.WhenAll(batches.Select(batch =>
            Processes.RunAsync("sh", ["-c", EvictLoop, "sh", .. batch], ToolTimeout, ct, root)));
        if (runs.FirstOrDefault(r => r.ExitCode != 0) is { } failed)
        {
            throw new BenchException($"dd iflag=nocache count=0 failed (exit code {failed.ExitCode}):\n{failed.Tail()}");
        }
    }

    /// <summary>How many bytes of the files are in the page cache now (fincore's RES column, summed).</summary>
    public static async Task<long> ResidentBytesAsync(string root, IReadOnlyList<string> files, CancellationToken ct)
    {
        long total = 0;
        foreach (var batch in files.Chunk(FincoreBatch))
        {
            var output = await Processes.RunAsync("fincore", ["--bytes", "--noheadings", "--output", "RES", .. batch], ToolTimeout, ct, root);
            if (output.ExitCode != 0)
            {
                throw new BenchException($"fincore failed (exit code {output.ExitCode}):\n{output.Tail()}");
            }
            total += output.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Sum(line => long.Parse(line, NumberStyles.None, CultureInfo.InvariantCulture));
        }
        return total;
    }

    /// <summary>Reads every file once, in parallel, so that all of it is cached (the harness is not throttled).</summary>
    public static Task LoadAsync(string root, IReadOnlyList<string> files, CancellationToken ct) =>
        Parallel.ForEachAsync(files, ct, async (file, token) =>
        {
            await using var stream = File.OpenRead(Path.Combine(root, file));
            await stream.CopyToAsync(Stream.Null, token);
        });
}
