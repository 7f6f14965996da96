using System.Globalization;
using System.Security;
using System.Text;

namespace AbBench;

/// <summary>
/// A hand-written SVG bar chart of the median ratios vs the baseline: one group per (case, variant), one bar
/// per charted metric (req/s and CPU/req; KiB/conn for idle), min–max whiskers, and a dashed line at 1.0.
/// </summary>
internal static class SvgChart
{
    private const double BarWidth = 26, BarGap = 4, GroupGap = 30;
    private const double Left = 56, Top = 84, PlotHeight = 240, Bottom = 52;
    private static readonly string[] Colors = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1"];

    public static string Render(ScenarioResult result)
    {
        var metrics = result.Cases.SelectMany(c => c.Metrics).Where(m => m.InChart).Distinct().ToArray();
        var groups = (from c in result.Cases
                      from v in result.Variants.Skip(1)
                      select (Case: c, Variant: v.Name,
                              Bars: metrics.Select(m => c.Metrics.Contains(m) ? c.Ratio(v.Name, result.Baseline, m) : new Summary(double.NaN, double.NaN, double.NaN, 0)).ToArray()))
                     .ToArray();

        // Room on the right for the "1.0 = baseline" label.
        var right = 24 + (6 + result.Baseline.Length) * 7.0;
        var groupWidth = metrics.Length * BarWidth + Math.Max(0, metrics.Length - 1) * BarGap;
        var gap = Math.Max(GroupGap, (480 - groups.Length * groupWidth) / (groups.Length + 1));
        var plotWidth = groups.Length * groupWidth + (groups.Length + 1) * gap;
        var rounds = result.Cases.SelectMany(c => c.Runs).Select(r => r.Round).Distinct().Count();
        var title = $"{result.Name}: median ratio vs {result.Baseline}";
        var subtitle = $"{result.Description}; {rounds} round{(rounds == 1 ? "" : "s")}, whiskers min–max";
        // Text is about 0.6 em wide per character; the picture is at least as wide as its titles.
        var textWidth = Math.Max(title.Length * 9.0, subtitle.Length * 6.6);
        if (Left + plotWidth + right < Left + textWidth + 20)
        {
            var extra = Left + textWidth + 20 - (Left + plotWidth + right);
            gap += extra / (groups.Length + 1);
            plotWidth = groups.Length * groupWidth + (groups.Length + 1) * gap;
        }
        var width = Left + plotWidth + right;
        var height = Top + PlotHeight + Bottom;

        var highest = groups.SelectMany(g => g.Bars).Where(s => s.Count > 0).Select(s => s.Max).DefaultIfEmpty(1).Max();
        var step = highest * 1.1 <= 2 ? 0.2 : highest * 1.1 <= 5 ? 0.5 : Math.Ceiling(highest * 1.1 / 10);
        var yMax = Math.Max(1.2, Math.Ceiling(highest * 1.1 / step) * step);
        double Y(double v) => Top + PlotHeight - (Math.Clamp(v, 0, yMax) / yMax * PlotHeight);

        var svg = new StringBuilder();
        svg.AppendLine(I($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:0}\" height=\"{height:0}\" viewBox=\"0 0 {width:0} {height:0}\" font-family=\"sans-serif\" font-size=\"12\">"));
        svg.AppendLine(I($"<rect width=\"{width:0}\" height=\"{height:0}\" fill=\"#ffffff\"/>"));
        svg.AppendLine(I($"<text x=\"{Left:0}\" y=\"22\" font-size=\"15\" font-weight=\"bold\">{X(title)}</text>"));
        svg.AppendLine(I($"<text x=\"{Left:0}\" y=\"40\" fill=\"#555555\">{X(subtitle)}</text>"));

        // Legend.
        var legendX = Left;
        for (var i = 0; i < metrics.Length; i++)
        {
            var label = $"{metrics[i].RatioName} ({(metrics[i].HigherIsBetter ? "higher" : "lower")} is better)";
            svg.AppendLine(I($"<rect x=\"{legendX:0}\" y=\"52\" width=\"12\" height=\"12\" fill=\"{Colors[i % Colors.Length]}\"/>"));
            svg.AppendLine(I($"<text x=\"{legendX + 17:0}\" y=\"62\">{X(label)}</text>"));
            legendX += 30 + label.Length * 6.5;
        }

        // Axis, grid and tick labels.
        for (var t = 0.0; t <= yMax + 1e-9; t += step)
        {
            svg.AppendLine(I($"<line x1=\"{Left:0}\" x2=\"{Left + plotWidth:0}\" y1=\"{Y(t):0.0}\" y2=\"{Y(t):0.0}\" stroke=\"#e5e5e5\"/>"));
            svg.AppendLine(I($"<text x=\"{Left - 6:0}\" y=\"{Y(t) + 4:0.0}\" text-anchor=\"end\" fill=\"#555555\">{t:0.0#}</text>"));
        }
        svg.AppendLine(I($"<line x1=\"{Left:0}\" x2=\"{Left:0}\" y1=\"{Top:0}\" y2=\"{Top + PlotHeight:0}\" stroke=\"#333333\"/>"));
        svg.AppendLine(I($"<line x1=\"{Left:0}\" x2=\"{Left + plotWidth:0}\" y1=\"{Top + PlotHeight:0}\" y2=\"{Top + PlotHeight:0}\" stroke=\"#333333\"/>"));

        // Bars; their value labels go on last, over the 1.0 line, with a white halo.
        var labels = new StringBuilder();
        for (var g = 0; g < groups.Length; g++)
        {
            var x0 = Left + gap + g * (groupWidth + gap);
            for (var b = 0; b < metrics.Length; b++)
            {
                var s = groups[g].Bars[b];
                var x = x0 + b * (BarWidth + BarGap);
                var centre = x + BarWidth / 2;
                if (s.Count == 0)
                {
                    labels.AppendLine(I($"<text x=\"{centre:0.0}\" y=\"{Y(0) - 4:0.0}\" text-anchor=\"middle\" font-size=\"10\">n/a</text>"));
                    continue;
                }
                svg.AppendLine(I($"<rect x=\"{x:0.0}\" y=\"{Y(s.Median):0.0}\" width=\"{BarWidth:0}\" height=\"{Y(0) - Y(s.Median):0.0}\" fill=\"{Colors[b % Colors.Length]}\"><title>{X(metrics[b].RatioName)} {Fmt.Ratio(s.Median)} ({Fmt.Ratio(s.Min)}–{Fmt.Ratio(s.Max)})</title></rect>"));
                if (s.Count > 1)
                {
                    svg.AppendLine(I($"<line x1=\"{centre:0.0}\" x2=\"{centre:0.0}\" y1=\"{Y(s.Min):0.0}\" y2=\"{Y(s.Max):0.0}\" stroke=\"#222222\"/>"));
                    svg.AppendLine(I($"<line x1=\"{centre - 5:0.0}\" x2=\"{centre + 5:0.0}\" y1=\"{Y(s.Min):0.0}\" y2=\"{Y(s.Min):0.0}\" stroke=\"#222222\"/>"));
                    svg.AppendLine(I($"<line x1=\"{centre - 5:0.0}\" x2=\"{centre + 5:0.0}\" y1=\"{Y(s.Max):0.0}\" y2=\"{Y(s.Max):0.0}\" stroke=\"#222222\"/>"));
                }
                labels.AppendLine(I($"<text x=\"{centre:0.0}\" y=\"{Math.Min(Y(s.Max), Y(s.Median)) - 4:0.0}\" text-anchor=\"middle\" font-size=\"10\" stroke=\"#ffffff\" stroke-width=\"3\" paint-order=\"stroke\">{s.Median:0.00}</text>"));
            }
            var labelX = x0 + groupWidth / 2;
            svg.AppendLine(I($"<text x=\"{labelX:0.0}\" y=\"{Top + PlotHeight + 18:0}\" text-anchor=\"middle\">{X(groups[g].Variant)}</text>"));
            svg.AppendLine(I($"<text x=\"{labelX:0.0}\" y=\"{Top + PlotHeight + 34:0}\" text-anchor=\"middle\" fill=\"#555555\">{X(groups[g].Case.Label)}</text>"));
        }

        // The baseline at 1.0, over the bars.
        svg.AppendLine(I($"<line x1=\"{Left:0}\" x2=\"{Left + plotWidth:0}\" y1=\"{Y(1):0.0}\" y2=\"{Y(1):0.0}\" stroke=\"#d62728\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>"));
        svg.AppendLine(I($"<text x=\"{Left + plotWidth + 6:0}\" y=\"{Y(1) + 4:0.0}\" fill=\"#d62728\">1.0 = {X(result.Baseline)}</text>"));
        svg.Append(labels);
        svg.AppendLine("</svg>");
        return svg.ToString();
    }

    private static string I(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    private static string X(string text) => SecurityElement.Escape(text);
}
