using System.Globalization;
using System.Text.Json;
using System.Xml.Linq;

namespace MediatorDiT.Tests.Cli;

/// <summary>`mdit search-thresholds` end to end on the fixture's three-model ladder.</summary>
public class SearchThresholdsCommandTests
{
    private static readonly string[] Common = ["--samples", "2", "--steps", "12", "--first", "2", "--no-progress"];

    [Fact]
    public void WritesPairsPlotAndABestScheduleThatMditSampleReproduces()
    {
        string dir = CliRunner.TempDir();
        var ladder = string.Join(",", SampleCommandTests.WriteLadder(dir));
        string outDir = Path.Combine(dir, "search");
        var r = CliRunner.Run(["search-thresholds", "--ladder", ladder, .. Common, "--refine", "2", "--refine-samples", "4", "--out", outDir]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("65 pairs x 2 samples", r.Stdout);

        var lines = File.ReadAllLines(Path.Combine(outDir, "pairs.csv"));
        Assert.Equal(66, lines.Length);
        var header = lines[0].Split(',');
        Assert.Equal(["ratio1", "ratio2", "gflops_per_image", "proxy_score", "refined_score"], header[..5]);
        var rows = lines[1..].Select(l => l.Split(',')).ToArray();
        Assert.Equal(("0.1", "0"), (rows[0][0], rows[0][1]));
        Assert.Equal(("1", "1"), (rows[^1][0], rows[^1][1]));
        Assert.Equal(2, rows.Count(c => c[4] != "")); // two refined candidates
        double[] gflops = rows.Select(c => double.Parse(c[2], CultureInfo.InvariantCulture)).ToArray();

        var svg = XDocument.Parse(File.ReadAllText(Path.Combine(outDir, "pareto.svg")));
        Assert.Equal(65, svg.Descendants().Count(e => (string?)e.Attribute("class") == "pair"));
        Assert.Single(svg.Descendants(), e => (string?)e.Attribute("class") == "chosen");

        using var best = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "best.json")));
        var root = best.RootElement;
        Assert.Equal("refined", root.GetProperty("chosen_by").GetString());
        // best.json is a valid schedule.json: the chosen ratios with the search's reference steps.
        var asSchedule = MediatorDiT.Sampling.ScheduleFile.TryRead(Path.Combine(outDir, "best.json"))!;
        Assert.Equal(root.GetProperty("ratios").EnumerateArray().Select(e => e.GetDouble()), asSchedule.Ratios);
        Assert.Equal(root.GetProperty("first").GetInt32(), asSchedule.First);
        double bestGflops = root.GetProperty("gflops_per_image").GetDouble();
        var args = root.GetProperty("sample_arguments").EnumerateArray().Select(e => e.GetString()!).ToList();
        Assert.Equal("sample", args[0]);
        Assert.StartsWith("mdit sample --ladder ", root.GetProperty("sample_command").GetString());
        Assert.Equal(2, root.GetProperty("refine").GetProperty("candidates").GetArrayLength());

        // The chosen schedule was refined on 4 samples; `mdit sample` with the recorded arguments and
        // --num-images 4 spends exactly the refined GFLOPs per image.
        int n = args.IndexOf("--num-images");
        args[n + 1] = "4";
        var s = CliRunner.Run([.. args, "--save-latents", Path.Combine(dir, "l.safetensors"), "--out", Path.Combine(dir, "sampled"), "--no-progress"]);
        Assert.True(s.ExitCode == 0, s.Stderr);
        using var run = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "sampled", "run.json")));
        Assert.Equal(bestGflops, run.RootElement.GetProperty("mean_gflops_per_image").GetDouble(), 12);

        // A budget between the cheapest and the dearest pair: the choice (by the proxy) fits it.
        double budget = (gflops.Min() + gflops.Max()) / 2;
        string budgetDir = Path.Combine(dir, "budget");
        var b = CliRunner.Run(["search-thresholds", "--ladder", ladder, .. Common, "--budget-gflops", budget.ToString("R", CultureInfo.InvariantCulture), "--out", budgetDir]);
        Assert.True(b.ExitCode == 0, b.Stderr);
        using var chosen = JsonDocument.Parse(File.ReadAllText(Path.Combine(budgetDir, "best.json")));
        double chosenGflops = chosen.RootElement.GetProperty("gflops_per_image").GetDouble();
        Assert.True(chosenGflops <= budget, $"{chosenGflops} > {budget}");
        Assert.Equal("proxy", chosen.RootElement.GetProperty("chosen_by").GetString());
        // It is the best proxy score among the pairs that fit.
        var fit = File.ReadAllLines(Path.Combine(budgetDir, "pairs.csv"))[1..].Select(l => l.Split(','))
            .Where(c => double.Parse(c[2], CultureInfo.InvariantCulture) <= budget).Min(c => double.Parse(c[3], CultureInfo.InvariantCulture));
        Assert.Equal(fit, chosen.RootElement.GetProperty("score").GetDouble());
    }

    [Fact]
    public void ABudgetBelowTheSmallestModelFailsBeforeSampling()
    {
        string dir = CliRunner.TempDir();
        var ladder = string.Join(",", SampleCommandTests.WriteLadder(dir));
        string outDir = Path.Combine(dir, "search");
        var r = CliRunner.Run(["search-thresholds", "--ladder", ladder, .. Common, "--budget-gflops", "0.000001", "--out", outDir]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("no schedule fits the budget of 1E-06 GFLOPs per image", r.Stderr);
        Assert.Contains("smallest model alone needs", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
        Assert.False(File.Exists(Path.Combine(outDir, "pairs.csv")));
        Assert.False(File.Exists(Path.Combine(outDir, "best.json")));
    }

    [Fact]
    public void OneModelIsNotALadder()
    {
        string dir = CliRunner.TempDir();
        var models = SampleCommandTests.WriteLadder(dir);
        var r = CliRunner.Run(["search-thresholds", "--ladder", models[0], .. Common, "--out", Path.Combine(dir, "o")]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("ladders of 2 or 3 models", r.Stderr);
    }
}
