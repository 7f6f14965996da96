namespace AbBench;

/// <summary>
/// The targets a scenario is held to: each a ratio of two variants' figures in one case, with a bound, judged on
/// the median of the per-round ratios (the figure the ratio tables give). Printed and saved as a section of its own.
/// </summary>
internal sealed class Targets
{
    private readonly Table _table = new("target", "measured: median of per-round ratios (min–max)", "verdict");

    /// <summary>
    /// <paramref name="variant"/> ÷ <paramref name="reference"/> in <paramref name="metric"/> must be at least
    /// (<paramref name="atLeast"/>) or at most <paramref name="bound"/>; n/a when either variant did not run.
    /// </summary>
    public void Add(string target, CaseResult? results, string variant, string reference, Metric metric, double bound, bool atLeast)
    {
        if (results is null || !results.Runs.Any(r => r.Variant == variant) || !results.Runs.Any(r => r.Variant == reference))
        {
            _table.Add(target, "n/a", $"n/a: no {(results is null ? "such case" : $"runs of {variant} and {reference}")}");
            return;
        }
        var measured = results.Ratio(variant, reference, metric);
        var verdict = measured.Count == 0 ? "n/a"
            : (atLeast ? measured.Median >= bound : measured.Median <= bound) ? $"met ({(atLeast ? "≥" : "≤")} {Fmt.Fixed2(bound)})"
            : $"NOT met ({(atLeast ? "<" : ">")} {Fmt.Fixed2(bound)})";
        _table.Add(target, Fmt.Range(measured, Fmt.Ratio), verdict);
    }

    public Section ToSection(string heading, IReadOnlyList<string> notes) => new(heading, _table, notes);
}
