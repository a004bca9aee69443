using System.Globalization;
using System.Text;
using MediatorDiT.IO;

namespace MediatorDiT.Evaluation;

/// <summary>Writes a threshold search as pairs.csv: one row per grid point, in grid order.</summary>
public static class ThresholdReport
{
    /// <summary>
    /// Columns: ratio1[, ratio2, ...], gflops_per_image, proxy_score, refined_score and
    /// refined_gflops_per_image (empty unless refined), then per switch i mean_switch_step_i (the mean
    /// step from which a model of index &gt;= i served; empty if none got there) and switched_fraction_i,
    /// and on_frontier (1 on the proxy's Pareto frontier).
    /// </summary>
    public static string PairsCsv(ThresholdSearchResult result, ThresholdRefinement? refinement)
    {
        ArgumentNullException.ThrowIfNull(result);
        int ratios = result.Pairs.Count > 0 ? result.Pairs[0].Pair.Ratios.Count : 0;
        var header = Enumerable.Range(1, ratios).Select(i => $"ratio{i}")
            .Concat(["gflops_per_image", "proxy_score", "refined_score", "refined_gflops_per_image"])
            .Concat(Enumerable.Range(1, ratios).SelectMany(i => new[] { $"mean_switch_step_{i}", $"switched_fraction_{i}" }))
            .Append("on_frontier");
        var csv = new StringBuilder().AppendJoin(',', header).Append('\n');
        var frontier = result.Frontier.ToHashSet();
        var refined = refinement?.Pairs.ToDictionary(r => r.Position) ?? [];
        for (int i = 0; i < result.Pairs.Count; i++)
        {
            var p = result.Pairs[i];
            var cells = p.Pair.Ratios.Select(R).ToList();
            cells.Add(R(p.GflopsPerImage));
            cells.Add(R(p.Score));
            cells.Add(refined.TryGetValue(i, out var r) ? R(r.Score) : "");
            cells.Add(r is not null ? R(r.GflopsPerImage) : "");
            for (int k = 0; k < p.MeanSwitchStep.Count; k++)
            {
                cells.Add(R(p.MeanSwitchStep[k]));
                cells.Add(R(p.SwitchedFraction[k]));
            }
            cells.Add(frontier.Contains(i) ? "1" : "0");
            csv.AppendJoin(',', cells).Append('\n');
        }
        return csv.ToString();
    }

    /// <summary>Writes <see cref="PairsCsv"/> to <paramref name="path"/> atomically.</summary>
    /// <param name="path">The file to write.</param>
    /// <param name="result">The proxy sweep.</param>
    /// <param name="refinement">The refine step's outcome, or null.</param>
    public static void WritePairsCsv(string path, ThresholdSearchResult result, ThresholdRefinement? refinement)
    {
        var bytes = Encoding.UTF8.GetBytes(PairsCsv(result, refinement));
        AtomicFile.Write(path, s => s.Write(bytes));
    }

    /// <summary>Writes UTF-8 text atomically (best.json and the like).</summary>
    public static void WriteText(string path, string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        AtomicFile.Write(path, s => s.Write(bytes));
    }

    private static string R(double v) => double.IsNaN(v) ? "" : v.ToString("R", CultureInfo.InvariantCulture);
}
