using MediatorDiT.Tests.Evaluation;

namespace MediatorDiT.Tests.Cli;

/// <summary>`mdit report DIR`: the table on stdout and in --markdown, the JSON and the plot; a missing file is one sentence.</summary>
public class ReportCommandTests
{
    [Fact]
    public void WritesTableJsonAndPlot()
    {
        string dir = CliRunner.TempDir();
        string results = Path.Combine(dir, "samples");
        SeedSetSummaryTests.WriteSeedSet(results, "full", 1, 30, 0.8, 8.2, 50, [[0]]);
        SeedSetSummaryTests.WriteSeedSet(results, "full", 2, 32, 0.8, 8.2, 50, [[0]]);
        SeedSetSummaryTests.WriteSeedSet(results, "dyn@0.9-0.6", 1, 31, 0.8, 6.3, 50, [[0, 12, 36]]);
        string md = Path.Combine(dir, "out", "table.md"), json = Path.Combine(dir, "out", "summary.json"), svg = Path.Combine(dir, "out", "fid.svg");
        var r = CliRunner.Run("report", results, "--configs", "full,dyn@0.9-0.6", "--markdown", md, "--json", json, "--plot", svg);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var lines = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("| full | 2 x 1 | 8.200 |  | 31.00 ± 1.41 |", lines[2]);
        Assert.StartsWith("| dyn@0.9-0.6 | 1 x 1 | 6.300 | 12.0, 36.0 | 31.00 |", lines[3]);
        Assert.Equal(r.Stdout, File.ReadAllText(md));
        Assert.Contains("\"name\": \"dyn@0.9-0.6\"", File.ReadAllText(json));
        Assert.StartsWith("<svg", File.ReadAllText(svg).TrimStart());
    }

    [Fact]
    public void MissingEvaluationIsOneSentence()
    {
        string dir = CliRunner.TempDir();
        SeedSetSummaryTests.WriteSeedSet(dir, "full", 1, 30, 0.8, 8.2, 50, [[0]]);
        File.Delete(Path.Combine(dir, "full", "seed-1", "eval.json"));
        var r = CliRunner.Run("report", dir);
        Assert.Equal(1, r.ExitCode);
        Assert.Equal($"error: {Path.Combine(dir, "full", "seed-1")} has no eval.json (written by mdit eval --json).", r.Stderr.Trim());
    }

    [Fact]
    public void ADamagedEvaluationIsNamedWithItsLineAndByte()
    {
        string dir = CliRunner.TempDir();
        SeedSetSummaryTests.WriteSeedSet(dir, "full", 1, 30, 0.8, 8.2, 50, [[0]]);
        string eval = Path.Combine(dir, "full", "seed-1", "eval.json");
        File.WriteAllText(eval, "{\n  bad");
        var r = CliRunner.Run("report", dir);
        Assert.Equal(1, r.ExitCode);
        Assert.Equal($"error: {eval} is not valid JSON (line 2, byte 3).", r.Stderr.Trim());
    }

    [Fact]
    public void BaselineAndCurvePairsAddPairedTables()
    {
        string dir = CliRunner.TempDir();
        for (int seed = 1; seed <= 2; seed++)
        {
            SeedSetSummaryTests.WriteSeedSet(dir, "m64", seed, 30 + seed, 0.8, 7.1, 50, [[0]]);
            SeedSetSummaryTests.WriteSeedSet(dir, "dyn@a", seed, 31 + seed, 0.8, 6.3, 50, [[0, 12, 36]]);
            SeedSetSummaryTests.WriteSeedSet(dir, "fix@a", seed, 32 + 2 * seed, 0.8, 6.3, 50, [[0, 12, 36]]);
        }
        var r = CliRunner.Run("report", dir, "--baseline", "m64", "--pair-curves", "dyn,fix");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("| dyn@a | m64 | 2 | 6.300, 7.100 | +1.00 ± 0.00 |", r.Stdout);
        Assert.Contains("| fix@a | m64 | 2 | 6.300, 7.100 | +3.50 ± 0.71 |", r.Stdout);
        Assert.Contains("| dyn@a | fix@a | 2 | 6.300, 6.300 | -2.50 ± 0.71 |", r.Stdout);

        // Two baselines: one table each, in the order given.
        var two = CliRunner.Run("report", dir, "--baseline", "m64", "--baseline", "fix@a");
        Assert.True(two.ExitCode == 0, two.Stderr);
        int againstM64 = two.Stdout.IndexOf("| dyn@a | m64 | 2 | 6.300, 7.100 | +1.00 ± 0.00 |", StringComparison.Ordinal);
        int againstFixed = two.Stdout.IndexOf("| m64 | fix@a | 2 | 7.100, 6.300 | -3.50 ± 0.71 |", StringComparison.Ordinal);
        Assert.True(againstM64 > 0 && againstFixed > againstM64, two.Stdout);

        var bad = CliRunner.Run("report", dir, "--baseline", "m16");
        Assert.Equal(1, bad.ExitCode);
        Assert.Equal("error: --baseline 'm16' is not one of the configurations (dyn@a, fix@a, m64).", bad.Stderr.Trim());
    }

    [Fact]
    public void LineAddsTheTableAgainstTheStraightLineBetweenTwoCosts()
    {
        string dir = CliRunner.TempDir();
        for (int seed = 1; seed <= 2; seed++)
        {
            SeedSetSummaryTests.WriteSeedSet(dir, "m16", seed, 32 + seed, 0.8, 6.0, 50, [[0]]);
            SeedSetSummaryTests.WriteSeedSet(dir, "m64", seed, 28 + seed, 0.8, 7.0, 50, [[0]]);
            SeedSetSummaryTests.WriteSeedSet(dir, "dyn@a", seed, 30 + 2 * seed, 0.8, 6.5, 50, [[0, 12, 36]]);
        }
        var r = CliRunner.Run("report", dir, "--line", "m16,m64");
        Assert.True(r.ExitCode == 0, r.Stderr);
        // Halfway: the line is 31 and 32; dyn@a has 32 and 34.
        Assert.Contains("| configuration | against the line (weight of the second end) | paired seed sets | GFLOPs / image |", r.Stdout);
        Assert.Contains("| dyn@a | m16 to m64 at 0.50 | 2 | 6.500 | +1.50 ± 0.71 |", r.Stdout);

        var unknown = CliRunner.Run("report", dir, "--line", "m16,m4");
        Assert.Equal(1, unknown.ExitCode);
        Assert.Equal("error: --line 'm4' is not one of the configurations (dyn@a, m16, m64).", unknown.Stderr.Trim());
        var one = CliRunner.Run("report", dir, "--line", "m16");
        Assert.Equal(1, one.ExitCode);
        Assert.Equal("error: --line takes two configurations, A,B; got 'm16'.", one.Stderr.Trim());
    }
}
