using MediatorDiT.Models;
using System.Text.Json;
using MediatorDiT.IO;
using MediatorDiT.Tests.Evaluation;
using MediatorDiT.Tests.Sampling;

namespace MediatorDiT.Tests.Cli;

/// <summary>`mdit search-thresholds --proxy fid --refine-scorer fid` on a tiny pixel-space ladder and a stand-in dataset.</summary>
public class SearchThresholdsFidTests
{
    [Fact]
    public void FidScoresEveryPairAndTheRefinedCandidates()
    {
        string dir = CliRunner.TempDir();
        var ladder = string.Join(",", MediatorDiT.Tests.Pipelines.LadderDemoTests.TinyLadder().Select(m =>
        {
            string path = Path.Combine(dir, $"m{m.Config.MediatorNum}.safetensors");
            ModelFiles.Save(m, path);
            return path;
        }));
        string classifier = Path.Combine(dir, "classifier.safetensors");
        SyntheticDigits.Classifier(1).Save(classifier, new Dictionary<string, string> { ["dataset"] = "mnist" });
        string data = SyntheticDigits.CreateDataDir();
        string outDir = Path.Combine(dir, "search");
        var r = CliRunner.Run("search-thresholds", "--ladder", ladder, "--samples", "4", "--steps", "6", "--first", "2", "--proxy", "fid",
            "--refine", "2", "--refine-samples", "6", "--refine-scorer", "fid", "--classifier", classifier, "--data-dir", data, "--out", outDir, "--no-progress");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var best = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "best.json")));
        Assert.Equal("fid", best.RootElement.GetProperty("scorer").GetString());
        Assert.Equal("fid", best.RootElement.GetProperty("refine").GetProperty("scorer").GetString());
        var scores = File.ReadAllLines(Path.Combine(outDir, "pairs.csv")).Skip(1).Select(l => double.Parse(l.Split(',')[3], System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        Assert.All(scores, s => Assert.True(s > 0, $"FID {s}"));

        var bad = CliRunner.Run("search-thresholds", "--ladder", ladder, "--proxy", "inception", "--out", outDir, "--no-progress");
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("--proxy must be reference-rms, frechet or fid", bad.Stderr);

        // The fixtures' latent ladder (4 x 16 x 16) cannot be scored by a 32 x 32 grey classifier: one line, before any sampling.
        var latent = string.Join(",", SampleCommandTests.WriteLadder(dir));
        bad = CliRunner.Run("search-thresholds", "--ladder", latent, "--refine", "1", "--refine-scorer", "fid", "--classifier", classifier, "--data-dir", data,
            "--out", outDir, "--no-progress");
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("fid scores pixel images", bad.Stderr);
        Assert.DoesNotContain("   at ", bad.Stderr);
    }
}
