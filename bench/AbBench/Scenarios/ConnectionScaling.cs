using System.Globalization;

namespace AbBench;

/// <summary>The connections scenario's own section: how each variant's rate holds up as connections grow.</summary>
internal static class ConnectionScaling
{
    /// <summary>Each variant's median req/s at every count divided by its own at 256, against the target at 8192.</summary>
    public static void Add(ScenarioResult result)
    {
        var reference = result.Cases.FirstOrDefault(c => c.Label == "c=256");
        if (reference is null)
        {
            result.Notes.Add("No scaling table: 256 connections was not among the counts.");
            return;
        }
        var largest = result.Cases.FirstOrDefault(c => c.Label == "c=8192");
        var table = new Table([.. result.Cases.Select(c => c.Label).Prepend("variant"), "target at 8192"]);
        foreach (var v in result.Variants)
        {
            var at256 = reference.Of(v.Name, Metric.Rps).Median;
            var ratios = result.Cases.Select(c => c.Of(v.Name, Metric.Rps).Median / at256).ToArray();
            var target = largest is null ? "n/a"
                : largest.Of(v.Name, Metric.Rps).Median / at256 >= 0.8 ? "met (≥ 0.80)" : "NOT met (< 0.80)";
            table.Add([v.Name, .. ratios.Select(r => r.ToString("0.00", CultureInfo.InvariantCulture)), target]);
        }
        result.Extra.Add(new Section("Scaling: median req/s ÷ the same variant's median req/s at 256 connections", table,
            ["Target: at 8192 connections, at least 0.8 × the rate at 256 connections."]));
    }
}
