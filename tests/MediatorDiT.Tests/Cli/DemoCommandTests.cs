using MediatorDiT.Models;
using System.Text.Json;
using MediatorDiT.IO;
using MediatorDiT.Tests.Evaluation;
using MediatorDiT.Tests.Sampling;

namespace MediatorDiT.Tests.Cli;

/// <summary>`mdit demo` end to end: on given files with a schedule.json beside them, on the shipped files, and bad input.</summary>
public class DemoCommandTests
{
    private static (string Ladder, string Classifier) WriteFiles(string dir)
    {
        var paths = MediatorDiT.Tests.Pipelines.LadderDemoTests.TinyLadder().Select((m, i) =>
        {
            string path = Path.Combine(dir, $"m{m.Config.MediatorNum}.safetensors");
            ModelFiles.Save(m, path);
            return path;
        }).ToArray();
        string classifier = Path.Combine(dir, "classifier.safetensors");
        SyntheticDigits.Classifier(1).Save(classifier, new Dictionary<string, string> { ["dataset"] = "fashion-mnist" });
        return (string.Join(",", paths), classifier);
    }

    [Fact]
    public void SamplesBothRunsAndTakesTheScheduleFromScheduleJson()
    {
        string dir = CliRunner.TempDir();
        var (ladder, classifier) = WriteFiles(dir);
        File.WriteAllText(Path.Combine(dir, "schedule.json"), "{\"ratios\": [0.8, 0.4], \"first\": 2, \"note\": \"from a search\"}");
        string outDir = Path.Combine(dir, "out");
        var r = CliRunner.Run("demo", "--ladder", ladder, "--classifier", classifier, "--per-class", "1", "--steps", "6", "--out", outDir, "--no-progress");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("schedule: ratios 0.8,0.4, first 2", r.Stdout);
        Assert.Contains("dynamic m1-m4-m16", r.Stdout);
        Assert.Contains("m16 alone", r.Stdout);
        Assert.Contains("saving", r.Stdout);
        Assert.Contains("switch steps: m4 ", r.Stdout);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "demo.json")));
        Assert.Equal([0.8, 0.4], doc.RootElement.GetProperty("ratios").EnumerateArray().Select(e => e.GetDouble()).ToArray());
        Assert.Equal(2, doc.RootElement.GetProperty("first").GetInt32());
        var picture = PngDecoder.Read(Path.Combine(outDir, "demo.png"));
        Assert.Equal(doc.RootElement.GetProperty("picture").GetProperty("width").GetInt32(), picture.Width);

        // Options win over the file.
        var o = CliRunner.Run("demo", "--ladder", ladder, "--classifier", classifier, "--per-class", "1", "--steps", "6", "--ratios", "0.5,0.5",
            "--out", outDir, "--no-progress");
        Assert.True(o.ExitCode == 0, o.Stderr);
        Assert.Contains("schedule: ratios 0.5,0.5, first 2", o.Stdout);
    }

    [Fact]
    public void RunsOnTheShippedLadderAndClassifierWithNoFilesNamed()
    {
        if (ShippedModels.TryFind(Path.Combine("fashion-mnist-ladder", "m64.safetensors"), out _) is null) return; // a checkout without the ladder
        string dir = CliRunner.TempDir();
        var r = CliRunner.Run("demo", "--per-class", "1", "--steps", "4", "--first", "1", "--out", dir, "--no-progress");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("classifier-fashion-mnist.safetensors", r.Stderr);
        Assert.Contains("dynamic m4-m16-m64", r.Stdout);
        Assert.True(File.Exists(Path.Combine(dir, "demo.png")));
    }

    [Fact]
    public void MissingFilesAndBadScheduleFilesAreOneClearLine()
    {
        string dir = CliRunner.TempDir();
        var (ladder, classifier) = WriteFiles(dir);
        var r = CliRunner.Run("demo", "--ladder", Path.Combine(dir, "nope.safetensors") + "," + ladder, "--classifier", classifier, "--out", dir, "--no-progress");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("nope.safetensors", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
        File.WriteAllText(Path.Combine(dir, "schedule.json"), "{\"ratios\": \"0.9\"}");
        r = CliRunner.Run("demo", "--ladder", ladder, "--classifier", classifier, "--out", dir, "--no-progress");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("schedule.json: expected an object with \"ratios\"", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
    }
}
