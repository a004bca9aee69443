using System.Text.Json;
using MediatorDiT.Evaluation;

namespace MediatorDiT.Tests.Evaluation;

/// <summary>
/// `mdit report`'s library side: seed-set folders (run.json + eval.json) summarised as mean and sample standard
/// deviation, the mean switch steps of a ladder run, curves for the plot, and one sentence for broken folders.
/// </summary>
public class SeedSetSummaryTests
{
    /// <summary>Writes DIR/config/seed-S/{run.json, eval.json} as `mdit sample` and `mdit eval --json` write them.</summary>
    internal static void WriteSeedSet(string root, string config, int seed, double fid, double agreement, double gflops,
        int steps, int[][] firstSteps)
    {
        string dir = Path.Combine(root, config, $"seed-{seed}");
        Directory.CreateDirectory(dir);
        var run = new
        {
            images = firstSteps.Length,
            steps,
            mean_gflops_per_image = gflops,
            samples = firstSteps.Select((f, i) => new { index = i, label = i % 10, first_step_of_model = f, gflops }),
        };
        File.WriteAllText(Path.Combine(dir, "run.json"), JsonSerializer.Serialize(run));
        var eval = new
        {
            result = new QualityReport
            {
                Fid = fid, Precision = 0.5 + seed / 100.0, Recall = 0.4, InceptionScore = 4, ClassAgreement = agreement,
                Count = firstSteps.Length, Reference = "test", K = 3,
            },
        };
        File.WriteAllText(Path.Combine(dir, "eval.json"), JsonSerializer.Serialize(eval));
    }

    [Fact]
    public void MeansAndSampleStandardDeviationsOverSeedSets()
    {
        string root = Path.Combine(Path.GetTempPath(), "mdit-seedsum-" + Guid.NewGuid().ToString("N")[..8]);
        double[] fids = [30.5, 31.25, 33.0];
        double[] agreements = [0.8, 0.82, 0.78];
        for (int s = 0; s < 3; s++)
            WriteSeedSet(root, "full", s + 1, fids[s], agreements[s], 8.2, 50, [[0], [0]]);
        var summary = Assert.Single(SeedSetSummary.Load(root));

        double mean = fids.Average();
        double std = Math.Sqrt(fids.Sum(f => (f - mean) * (f - mean)) / 2);
        Assert.Equal("full", summary.Name);
        Assert.Equal(6, summary.Images);
        Assert.Equal(mean, summary.Fid.Mean, 12);
        Assert.Equal(std, summary.Fid.StandardDeviation, 12);
        Assert.Equal(3, summary.Fid.Count);
        Assert.Equal(agreements.Average(), summary.ClassAgreement.Mean, 12);
        Assert.Equal(8.2, summary.MeanGflopsPerImage, 12);
        Assert.Empty(summary.MeanSwitchSteps);
        Assert.Null(summary.Curve);
        Assert.Contains($"| full | 3 x 2 | 8.200 |  | {mean:F2} ± {std:F2} |", SeedSetSummary.MarkdownTable([summary]));
    }

    [Fact]
    public void SwitchStepsCountAModelSkippedOrNeverReached()
    {
        string root = Path.Combine(Path.GetTempPath(), "mdit-seedsum-" + Guid.NewGuid().ToString("N")[..8]);
        // Three images of a 3-model ladder over 50 steps: switches at 10 and 30; at 20 and 20 (model 1 skipped
        // in the same step); to model 1 at 40 and never to model 2.
        WriteSeedSet(root, "shared-dynamic@0.9-0.6", 1, 30, 0.8, 6.3, 50, [[0, 10, 30], [0, -1, 20], [0, 40, -1]]);
        var summary = Assert.Single(SeedSetSummary.Load(root));
        Assert.Equal([(10 + 20 + 40) / 3.0, (30 + 20 + 50) / 3.0], summary.MeanSwitchSteps);
        Assert.Equal("shared-dynamic", summary.Curve);
        Assert.True(double.IsNaN(summary.Fid.StandardDeviation));
        Assert.Equal("30.00", summary.Fid.Format(2));
    }

    [Fact]
    public void CurvesAreLinesSortedByFlopsAndSinglesAreDots()
    {
        string root = Path.Combine(Path.GetTempPath(), "mdit-seedsum-" + Guid.NewGuid().ToString("N")[..8]);
        WriteSeedSet(root, "dyn@b", 1, 31, 0.8, 6.5, 50, [[0, 5, 9]]);
        WriteSeedSet(root, "dyn@a", 1, 33, 0.8, 6.0, 50, [[0, 10, 30]]);
        WriteSeedSet(root, "m64", 1, 30, 0.8, 7.1, 50, [[0]]);
        var all = SeedSetSummary.Load(root);
        Assert.Equal(["dyn@a", "dyn@b", "m64"], all.Select(c => c.Name));
        string svg = SeedSetSummary.FidPlot(all, "t");
        Assert.Contains(">dyn<", svg);
        Assert.Contains(">m64<", svg);
        Assert.Single(System.Text.RegularExpressions.Regex.Matches(svg, "<polyline"));
        Assert.Equal(3, System.Text.RegularExpressions.Regex.Matches(svg, "<circle").Count);

        using var json = JsonDocument.Parse(SeedSetSummary.Json(SeedSetSummary.Load(root, ["m64", "dyn@a"])));
        Assert.Equal(["m64", "dyn@a"], json.RootElement.EnumerateArray().Select(e => e.GetProperty("name").GetString()));
        Assert.Equal(30, json.RootElement[0].GetProperty("fid").GetProperty("mean").GetDouble());
        Assert.Equal(JsonValueKind.Null, json.RootElement[0].GetProperty("fid").GetProperty("std").ValueKind);
    }

    [Fact]
    public void BrokenFoldersAreNamedInOneSentence()
    {
        string root = Path.Combine(Path.GetTempPath(), "mdit-seedsum-" + Guid.NewGuid().ToString("N")[..8]);
        WriteSeedSet(root, "full", 1, 30, 0.8, 8.2, 50, [[0], [0]]);
        string seed = Path.Combine(root, "full", "seed-1");
        File.Delete(Path.Combine(seed, "eval.json"));
        var e = Assert.Throws<MediatorDiTException>(() => SeedSetSummary.Load(root));
        Assert.Equal($"{seed} has no eval.json (written by mdit eval --json).", e.Message);

        WriteSeedSet(root, "full", 1, 30, 0.8, 8.2, 50, [[0], [0]]);
        File.WriteAllText(Path.Combine(seed, "run.json"), JsonSerializer.Serialize(new { images = 3, steps = 50, mean_gflops_per_image = 8.2 }));
        e = Assert.Throws<MediatorDiTException>(() => SeedSetSummary.Load(root));
        Assert.Contains("scored 2 images but", e.Message);

        e = Assert.Throws<MediatorDiTException>(() => SeedSetSummary.Load(root, ["missing"]));
        Assert.Contains("the configuration 'missing' has no folder", e.Message);
        e = Assert.Throws<MediatorDiTException>(() => SeedSetSummary.Load(Path.Combine(root, "nothing")));
        Assert.Contains("does not exist", e.Message);
    }

    [Fact]
    public void PairedDifferencesMatchSeedSetsByName()
    {
        string root = Path.Combine(Path.GetTempPath(), "mdit-seedsum-" + Guid.NewGuid().ToString("N")[..8]);
        // Seed sets move both configurations together; the paired difference keeps only what separates them.
        double[] fixedFid = [30, 33, 35], dynamicFid = [29.5, 32.25, 34.75];
        for (int s = 0; s < 3; s++)
        {
            WriteSeedSet(root, "fixed@0.9-0.6", s + 1, fixedFid[s], 0.8, 6.3, 50, [[0, 12, 36]]);
            WriteSeedSet(root, "dynamic@0.9-0.6", s + 1, dynamicFid[s], 0.8, 6.3, 50, [[0, 10, 38]]);
        }
        WriteSeedSet(root, "dynamic@1-1", 4, 31, 0.8, 6.9, 50, [[0, 5, 5]]);   // no partner on the fixed curve
        var all = SeedSetSummary.Load(root);
        var pairs = SeedSetSummary.CurvePairs(all, "dynamic", "fixed");
        var (a, b) = Assert.Single(pairs);
        Assert.Equal(("dynamic@0.9-0.6", "fixed@0.9-0.6"), (a.Name, b.Name));
        var d = SeedSetSummary.PairedDifference(a, b, q => q.Fid)!;
        double[] diffs = [-0.5, -0.75, -0.25];
        Assert.Equal(diffs.Average(), d.Mean, 12);
        Assert.Equal(Math.Sqrt(diffs.Sum(x => (x - diffs.Average()) * (x - diffs.Average())) / 2), d.StandardDeviation, 12);
        Assert.True(d.StandardDeviation < a.Fid.StandardDeviation / 4);
        Assert.Null(SeedSetSummary.PairedDifference(all.Single(c => c.Name == "dynamic@1-1"), b, q => q.Fid));
        Assert.Contains("| dynamic@0.9-0.6 | fixed@0.9-0.6 | 3 | 6.300, 6.300 | -0.50 ± 0.25 |", SeedSetSummary.PairedTable(pairs));
        var e = Assert.Throws<MediatorDiTException>(() => SeedSetSummary.CurvePairs(all, "dynamic", "static"));
        Assert.Contains("curve 'static'", e.Message);
    }

    [Fact]
    public void TheLineBetweenTwoCosts_IsWeightedByFlops_SeedSetBySeedSet()
    {
        string root = Path.Combine(Path.GetTempPath(), "mdit-seedsum-" + Guid.NewGuid().ToString("N")[..8]);
        // m16 at 6 GFLOPs, m64 at 7; a schedule at 6.25 lies a quarter of the way: its line is 0.75 m16 + 0.25 m64.
        double[] m16 = [31, 33, 32], m64 = [27, 29, 30], schedule = [29, 31.5, 31];
        for (int s = 0; s < 3; s++)
        {
            WriteSeedSet(root, "m16", s + 1, m16[s], 0.8, 6.0, 50, [[0]]);
            WriteSeedSet(root, "m64", s + 1, m64[s], 0.8, 7.0, 50, [[0]]);
            WriteSeedSet(root, "dynamic@a", s + 1, schedule[s], 0.8, 6.25, 50, [[0, 10, 40]]);
        }
        WriteSeedSet(root, "full", 1, 30, 0.8, 8.2, 50, [[0]]); // outside the line's costs
        var all = SeedSetSummary.Load(root);
        ConfigurationSummary Get(string name) => all.Single(c => c.Name == name);
        Assert.Equal(0.25, SeedSetSummary.LineWeight(Get("dynamic@a"), Get("m16"), Get("m64")), 12);
        Assert.Equal(["dynamic@a"], SeedSetSummary.Between(all, Get("m64"), Get("m16")).Select(c => c.Name));

        double[] expected = [.. Enumerable.Range(0, 3).Select(s => schedule[s] - (0.75 * m16[s] + 0.25 * m64[s]))]; // -1, -0.5, -0.5
        var d = SeedSetSummary.LineDifference(Get("dynamic@a"), Get("m16"), Get("m64"), q => q.Fid)!;
        Assert.Equal(expected.Average(), d.Mean, 12);
        Assert.Equal(Math.Sqrt(expected.Sum(x => (x - expected.Average()) * (x - expected.Average())) / 2), d.StandardDeviation, 12);
        // The same line from its other end.
        Assert.Equal(d.Mean, SeedSetSummary.LineDifference(Get("dynamic@a"), Get("m64"), Get("m16"), q => q.Fid)!.Mean, 12);
        Assert.Contains("| dynamic@a | m16 to m64 at 0.25 | 3 | 6.250 | -0.67 ± 0.29 |", SeedSetSummary.LineTable(all, Get("m16"), Get("m64")));

        var e = Assert.Throws<MediatorDiTException>(() => SeedSetSummary.LineTable(all, Get("m16"), Get("dynamic@a")));
        Assert.Contains("no configuration samples at a cost between 'm16'", e.Message);
        e = Assert.Throws<MediatorDiTException>(() => SeedSetSummary.LineWeight(Get("full"), Get("m16"), Get("m16")));
        Assert.Contains("needs two different costs", e.Message);
    }
}
