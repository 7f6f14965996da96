using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace AbBench;

/// <summary>A table that prints as aligned text on the console and as a Markdown table in result files.</summary>
internal sealed class Table(params string[] headers)
{
    public IReadOnlyList<string> Headers { get; } = headers;

    /// <summary>How many leading columns hold text (left-aligned); the rest hold figures (right-aligned).</summary>
    public int TextColumns { get; init; } = 1;

    public List<string[]> Rows { get; } = [];

    public void Add(params string[] cells) => Rows.Add(cells);

    public string ToText()
    {
        var widths = Headers.Select((h, i) => Rows.Select(r => r[i].Length).Prepend(h.Length).Max()).ToArray();
        var text = new StringBuilder();
        foreach (var row in Rows.Prepend([.. Headers]))
        {
            text.AppendLine(string.Join("  ", row.Select((cell, i) => i < TextColumns ? cell.PadRight(widths[i]) : cell.PadLeft(widths[i]))).TrimEnd());
        }
        return text.ToString();
    }

    public string ToMarkdown()
    {
        var text = new StringBuilder();
        text.AppendLine("| " + string.Join(" | ", Headers.Select(Escape)) + " |");
        text.AppendLine("|" + string.Join("|", Headers.Select((_, i) => i < TextColumns ? "---" : "---:")) + "|");
        foreach (var row in Rows)
        {
            text.AppendLine("| " + string.Join(" | ", row.Select(Escape)) + " |");
        }
        return text.ToString();
    }

    private static string Escape(string cell) => cell.Replace("|", "\\|", StringComparison.Ordinal);
}

/// <summary>A table with a heading and notes, beyond the standard per-case tables (e.g. connection scaling).</summary>
internal sealed record Section(string Heading, Table Table, IReadOnlyList<string> Notes);

/// <summary>Everything one scenario measured.</summary>
internal sealed class ScenarioResult(string name, string description, IReadOnlyList<Variant> variants)
{
    public string Name { get; } = name;

    public string Description { get; } = description;

    public IReadOnlyList<Variant> Variants { get; } = variants;

    public string Baseline => Variants[0].Name;

    public List<CaseResult> Cases { get; } = [];

    public List<Section> Extra { get; } = [];

    /// <summary>How the server and the load of each run were started (ports left open).</summary>
    public List<string> Commands { get; } = [];

    /// <summary>Per variant, the sample's startup line ("Transport: ...; inline scheduling: ...").</summary>
    public Dictionary<string, string> StartupLines { get; } = [];

    public List<string> Notes { get; } = [];

    public DateTime StartedUtc { get; } = DateTime.UtcNow;

    public DateTime FinishedUtc { get; set; }
}

/// <summary>Prints results and writes the result files: Markdown, SVG chart and LATEST.md.</summary>
internal static partial class Report
{
    public static void Print(ScenarioResult result)
    {
        Console.WriteLine();
        Console.WriteLine($"=== {result.Name} results");
        foreach (var c in result.Cases)
        {
            var rounds = c.Runs.Select(r => r.Round).Distinct().Count();
            Console.WriteLine();
            Console.WriteLine($"--- {c.Title}: medians over {rounds} round(s)");
            Console.Write(SummaryTable(result, c).ToText());
            Console.WriteLine();
            Console.WriteLine($"ratio vs {result.Baseline} (median of the per-round ratios, min–max):");
            Console.Write(RatioTable(result, c).ToText());
        }
        foreach (var section in result.Extra)
        {
            Console.WriteLine();
            Console.WriteLine($"--- {section.Heading}");
            Console.Write(section.Table.ToText());
            foreach (var note in section.Notes)
            {
                Console.WriteLine(note);
            }
        }
        Console.WriteLine();
        Console.WriteLine(Legend(result));
    }

    /// <summary>Writes the Markdown and SVG files, then LATEST.md; returns the Markdown file's path.</summary>
    public static string Save(ScenarioResult result, BenchContext context, RunFacts facts)
    {
        var dir = context.ResultsDir;
        Directory.CreateDirectory(dir);
        var stem = $"{result.StartedUtc:yyyy-MM-dd-HHmmss}-{result.Name}";
        var markdownPath = Path.Combine(dir, stem + ".md");
        var svgPath = Path.Combine(dir, stem + ".svg");
        File.WriteAllText(svgPath, SvgChart.Render(result));
        File.WriteAllText(markdownPath, Markdown(result, context, facts, stem + ".svg"));
        WriteLatest(dir);
        return markdownPath;
    }

    private static string Legend(ScenarioResult result) =>
        $"Ratios are variant / {result.Baseline} within the same round. Above 1 is better for req/s; below 1 is better for latency, CPU µs/req, RSS and KiB/conn.";

    private static Table SummaryTable(ScenarioResult result, CaseResult c)
    {
        var table = new Table([.. c.Metrics.Select(m => m.ShowRange ? $"{m.Header} (min–max)" : m.Header).Prepend("variant")]);
        foreach (var v in result.Variants)
        {
            table.Add([
                v.Name == result.Baseline ? v.Name + " (baseline)" : v.Name,
                .. c.Metrics.Select(m => m.ShowRange ? Fmt.Range(c.Of(v.Name, m), m.Format) : m.Format(c.Of(v.Name, m).Median)),
            ]);
        }
        return table;
    }

    private static Table RatioTable(ScenarioResult result, CaseResult c)
    {
        var metrics = c.Metrics.Where(m => m.InRatios).ToArray();
        var table = new Table([.. metrics.Select(m => $"{m.RatioName} ({(m.HigherIsBetter ? "higher" : "lower")} is better)").Prepend("variant")]);
        foreach (var v in result.Variants.Skip(1))
        {
            table.Add([v.Name, .. metrics.Select(m => Fmt.Range(c.Ratio(v.Name, result.Baseline, m), Fmt.Ratio))]);
        }
        return table;
    }

    /// <summary>
    /// A section of ratios against a variant other than the baseline (a reference server, or another mode):
    /// per case and variant, the median of the per-round ratios variant ÷ <paramref name="reference"/> (min–max).
    /// </summary>
    public static Section Versus(ScenarioResult result, string reference, IEnumerable<string> variants, string heading)
    {
        var metrics = result.Cases.SelectMany(c => c.Metrics).Where(m => m.InRatios).Distinct().ToArray();
        var table = new Table([.. metrics.Select(m => $"{m.RatioName} ({(m.HigherIsBetter ? "higher" : "lower")} is better)").Prepend("variant").Prepend("case")]) { TextColumns = 2 };
        foreach (var c in result.Cases)
        {
            foreach (var v in variants)
            {
                table.Add([c.Label, v, .. metrics.Select(m => c.Metrics.Contains(m) ? Fmt.Range(c.Ratio(v, reference, m), Fmt.Ratio) : "n/a")]);
            }
        }
        return new Section(heading, table, []);
    }

    private static Table RoundRatioTable(ScenarioResult result, CaseResult c)
    {
        var metrics = c.Metrics.Where(m => m.InRatios).ToArray();
        var table = new Table([.. metrics.Select(m => m.RatioName).Prepend("round").Prepend("variant")]) { TextColumns = 2 };
        foreach (var v in result.Variants.Skip(1))
        {
            var perMetric = metrics.Select(m => c.RoundRatios(v.Name, result.Baseline, m).ToDictionary(r => r.Round, r => r.Ratio)).ToArray();
            foreach (var round in c.Runs.Select(r => r.Round).Distinct().Order())
            {
                table.Add([v.Name, round.ToString(CultureInfo.InvariantCulture),
                    .. perMetric.Select(d => d.TryGetValue(round, out var ratio) ? Fmt.Ratio(ratio) : "n/a")]);
            }
        }
        return table;
    }

    private static Table RawTable(CaseResult c)
    {
        var table = new Table([.. c.Metrics.Select(m => m.Header).Prepend("variant").Prepend("round"), .. c.DetailHeaders]) { TextColumns = 2 };
        foreach (var run in c.Runs)
        {
            table.Add([run.Round.ToString(CultureInfo.InvariantCulture), run.Variant, .. c.Metrics.Select(m => m.Format(run.Value(m))), .. run.Details]);
        }
        return table;
    }

    private static string Markdown(ScenarioResult result, BenchContext context, RunFacts facts, string svgName)
    {
        var o = context.Options;
        var md = new StringBuilder();
        md.AppendLine(CultureInfo.InvariantCulture, $"# {result.Name}: {result.Description}");
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"- Command: `dotnet run -c Release --project bench/AbBench -- {CommandLine.Join(o.RawArgs)}`");
        md.AppendLine(CultureInfo.InvariantCulture, $"- Commit: `{facts.Commit}`");
        md.AppendLine(CultureInfo.InvariantCulture, $"- Started {result.StartedUtc:yyyy-MM-dd HH:mm:ss} UTC, took {(result.FinishedUtc - result.StartedUtc).TotalMinutes:0.0} min");
        md.AppendLine(CultureInfo.InvariantCulture, $"- Machine: nproc {facts.Nproc}; kernel {facts.Kernel}; CPU {facts.CpuModel}; {facts.Runtime}; {facts.LoadTools}");
        md.AppendLine(CultureInfo.InvariantCulture, $"- Pinning: server `taskset -c {o.ServerCpus}`, load generator `taskset -c {o.ClientCpus}`");
        md.AppendLine(CultureInfo.InvariantCulture, $"- Server: {context.AppDescription}");
        foreach (var note in result.Notes)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"- {note}");
        }
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"Ratios are variant / {result.Baseline} within the same round; the tables give the median of those per-round ratios and their min–max. Above 1 is better for req/s; below 1 is better for latency, CPU µs/req, RSS and KiB/conn. CPU µs/req is the server's utime+stime over the measured load divided by the requests completed in it; peak RSS is the server's VmHWM at the end of the run.");
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"![median ratios vs {result.Baseline}]({svgName})");
        md.AppendLine();

        md.AppendLine("## Variants");
        md.AppendLine();
        var variants = new Table("name", "arguments", "startup log") { TextColumns = 3 };
        foreach (var v in result.Variants)
        {
            variants.Add(v.Name == result.Baseline ? v.Name + " (baseline)" : v.Name, $"`{v.Args}`",
                result.StartupLines.GetValueOrDefault(v.Name, "n/a"));
        }
        md.Append(variants.ToMarkdown());
        md.AppendLine();
        md.AppendLine("Each run, round by round, the variants in order in odd rounds and in reverse in even rounds (A B C, C B A, ...):");
        md.AppendLine();
        md.AppendLine("```sh");
        foreach (var command in result.Commands)
        {
            md.AppendLine(command);
        }
        md.AppendLine("```");

        foreach (var c in result.Cases)
        {
            md.AppendLine();
            md.AppendLine(CultureInfo.InvariantCulture, $"## {c.Title}");
            md.AppendLine();
            md.AppendLine(CultureInfo.InvariantCulture, $"Medians over {c.Runs.Select(r => r.Round).Distinct().Count()} round(s):");
            md.AppendLine();
            md.Append(SummaryTable(result, c).ToMarkdown());
            md.AppendLine();
            md.AppendLine(CultureInfo.InvariantCulture, $"Ratio vs {result.Baseline}, median of the per-round ratios (min–max):");
            md.AppendLine();
            md.Append(RatioTable(result, c).ToMarkdown());
            md.AppendLine();
            md.AppendLine("Per-round ratios:");
            md.AppendLine();
            md.Append(RoundRatioTable(result, c).ToMarkdown());
            md.AppendLine();
            md.AppendLine("Raw runs:");
            md.AppendLine();
            md.Append(RawTable(c).ToMarkdown());
        }

        foreach (var section in result.Extra)
        {
            md.AppendLine();
            md.AppendLine(CultureInfo.InvariantCulture, $"## {section.Heading}");
            md.AppendLine();
            md.Append(section.Table.ToMarkdown());
            foreach (var note in section.Notes)
            {
                md.AppendLine();
                md.AppendLine(note);
            }
        }
        return md.ToString();
    }

    /// <summary>Rewrites LATEST.md: the newest result file of each scenario in <paramref name="dir"/>.</summary>
    private static void WriteLatest(string dir)
    {
        var latest = new Dictionary<string, string>();
        foreach (var file in Directory.EnumerateFiles(dir, "*.md").Select(Path.GetFileName).OfType<string>())
        {
            var m = ResultFileRegex().Match(file);
            if (m.Success && (!latest.TryGetValue(m.Groups[2].Value, out var current) || string.CompareOrdinal(file, current) > 0))
            {
                latest[m.Groups[2].Value] = file;
            }
        }

        var md = new StringBuilder();
        md.AppendLine("# Latest benchmark results");
        md.AppendLine();
        md.AppendLine("The newest result of each scenario in this folder, rewritten by `bench/AbBench` after every saved run. Each file holds the exact command, the commit, the machine, the pinning and every raw run. See [bench/README.md](../README.md) for how to read them.");
        md.AppendLine();
        md.AppendLine("| Scenario | Result | Chart |");
        md.AppendLine("|---|---|---|");
        var order = ScenarioRegistry.All.Select(s => s.Name).ToList();
        foreach (var (scenario, file) in latest.OrderBy(p => order.IndexOf(p.Key) is var i && i < 0 ? int.MaxValue : i).ThenBy(p => p.Key, StringComparer.Ordinal))
        {
            var svg = Path.ChangeExtension(file, ".svg");
            var chart = File.Exists(Path.Combine(dir, svg)) ? $"[{svg}]({svg})" : "—";
            md.AppendLine(CultureInfo.InvariantCulture, $"| {scenario} | [{file}]({file}) | {chart} |");
        }
        File.WriteAllText(Path.Combine(dir, "LATEST.md"), md.ToString());
    }

    [GeneratedRegex(@"^(\d{4}-\d{2}-\d{2}-\d{6})-([a-z0-9]+)\.md$")]
    private static partial Regex ResultFileRegex();
}
