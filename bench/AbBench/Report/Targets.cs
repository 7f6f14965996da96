namespace AbBench;

/// <summary>
/// The targets a scenario is held to, printed and saved as a section of its own. Most are a ratio of two variants'
/// figures in one case, judged on the median of the per-round ratios (the figure the ratio tables give) and, with a
/// floor, also on their minimum; some bound a variant's own figure, judged on its median over the rounds.
/// </summary>
internal sealed class Targets
{
    private readonly Table _table = new("target", "measured: median (min–max)", "verdict");

    /// <summary>
    /// <paramref name="variant"/> ÷ <paramref name="reference"/> in <paramref name="metric"/> must be at least
    /// (<paramref name="atLeast"/>) or at most <paramref name="bound"/>, as the median of the per-round ratios; with a
    /// <paramref name="floor"/>, no round's ratio may be on the wrong side of it either ("no round below"). n/a when
    /// either variant did not run.
    /// </summary>
    public void Add(string target, CaseResult? results, string variant, string reference, Metric metric, double bound, bool atLeast, double? floor = null)
    {
        if (results is null || !results.Runs.Any(r => r.Variant == variant) || !results.Runs.Any(r => r.Variant == reference))
        {
            _table.Add(target, "n/a", $"n/a: no {(results is null ? "such case" : $"runs of {variant} and {reference}")}");
            return;
        }
        AddJudged(target, results.Ratio(variant, reference, metric), Fmt.Ratio, bound, atLeast, floor);
    }

    /// <summary>
    /// <paramref name="variant"/>'s own median in <paramref name="metric"/> over the rounds must be at least
    /// (<paramref name="atLeast"/>) or at most <paramref name="bound"/>; n/a when the variant did not run or its
    /// server gave no such figure.
    /// </summary>
    public void AddOwn(string target, CaseResult? results, string variant, Metric metric, double bound, bool atLeast)
    {
        if (results is null || !results.Runs.Any(r => r.Variant == variant))
        {
            _table.Add(target, "n/a", $"n/a: no {(results is null ? "such case" : $"runs of {variant}")}");
            return;
        }
        AddJudged(target, results.Of(variant, metric), metric.Format, bound, atLeast, floor: null);
    }

    private void AddJudged(string target, Summary measured, Func<double, string> format, double bound, bool atLeast, double? floor)
    {
        if (measured.Count == 0)
        {
            _table.Add(target, "n/a", "n/a: no figure");
            return;
        }
        bool Holds(double value, double limit) => atLeast ? value >= limit : value <= limit;
        var (holds, fails) = atLeast ? ("≥", "<") : ("≤", ">");
        var failed = new List<string>();
        if (!Holds(measured.Median, bound))
        {
            failed.Add($"median {fails} {Fmt.Fixed2(bound)}");
        }
        var worstRound = atLeast ? measured.Min : measured.Max;
        if (floor is { } f && !Holds(worstRound, f))
        {
            failed.Add($"a round {fails} {Fmt.Fixed2(f)}");
        }
        var wanted = $"{holds} {Fmt.Fixed2(bound)}{(floor is { } g ? $", no round {fails} {Fmt.Fixed2(g)}" : "")}";
        _table.Add(target, Fmt.Range(measured, format), failed.Count == 0 ? $"met ({wanted})" : $"NOT met: {string.Join(", ", failed)}");
    }

    public Section ToSection(string heading, IReadOnlyList<string> notes) => new(heading, _table, notes);
}
