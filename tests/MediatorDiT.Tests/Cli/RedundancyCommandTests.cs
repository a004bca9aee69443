using System.Globalization;
using System.Xml.Linq;

namespace MediatorDiT.Tests.Cli;

/// <summary>`mdit redundancy` end to end on the fixtures' tiny models: the CSV's shape and values, the plots.</summary>
public class RedundancyCommandTests
{
    [Theory]
    [InlineData("mediator_grid4_m4", 1, 5, "sde")]
    [InlineData("full_grid8", 2, 4, "ode")]
    public void WritesOneRowPerLayerAndStepAndTwoPlots(string model, int depth, int steps, string mode)
    {
        string dir = CliRunner.TempDir();
        string outDir = Path.Combine(dir, "out");
        var r = CliRunner.Run("redundancy", "--checkpoint", Fixtures.PathOf($"{model}.weights.safetensors"), "--samples", "3",
            "--batch-size", "2", "--steps", steps.ToString(CultureInfo.InvariantCulture), "--mode", mode, "--out", outDir, "--no-progress");
        Assert.True(r.ExitCode == 0, r.Stderr);

        var lines = File.ReadAllLines(Path.Combine(outDir, "redundancy.csv"));
        Assert.Equal("layer,step,t,S", lines[0]);
        // SDE Euler: steps - 1 grid steps and the last step; ODE Euler: steps - 1 steps; one network call each.
        int evaluations = mode == "sde" ? steps : steps - 1;
        var rows = lines.Skip(1).Select(l => l.Split(',')).ToArray();
        Assert.Equal(depth * evaluations, rows.Length);
        Assert.All(rows, f => Assert.Equal(4, f.Length));
        var layers = rows.Select(f => int.Parse(f[0], CultureInfo.InvariantCulture)).ToArray();
        var stepIndex = rows.Select(f => int.Parse(f[1], CultureInfo.InvariantCulture)).ToArray();
        var times = rows.Select(f => double.Parse(f[2], CultureInfo.InvariantCulture)).ToArray();
        var values = rows.Select(f => double.Parse(f[3], CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(Enumerable.Range(0, depth), layers.Distinct().Order());
        Assert.Equal(Enumerable.Range(0, evaluations), stepIndex.Distinct().Order());
        // Time grows with the step; S is a JS divergence, so within [0, ln 2], and not constant.
        var byStep = rows.Select((f, i) => (Step: stepIndex[i], T: times[i])).Distinct().OrderBy(x => x.Step).Select(x => x.T).ToArray();
        Assert.Equal(byStep.Order(), byStep);
        Assert.Equal(evaluations, byStep.Distinct().Count());
        Assert.All(values, v => Assert.InRange(v, 0, Math.Log(2) + 1e-12));
        Assert.True(values.Max() > values.Min());

        foreach (string svg in new[] { "redundancy-layers.svg", "redundancy-heatmap.svg" })
        {
            var doc = XDocument.Load(Path.Combine(outDir, svg));
            Assert.Equal("svg", doc.Root!.Name.LocalName);
        }
        var heat = XDocument.Load(Path.Combine(outDir, "redundancy-heatmap.svg"));
        XNamespace ns = "http://www.w3.org/2000/svg";
        // Background, depth x evaluations cells, 50 colour-bar bands and the bar's frame.
        Assert.Equal(1 + depth * evaluations + 50 + 1, heat.Descendants(ns + "rect").Count());
        var curves = XDocument.Load(Path.Combine(outDir, "redundancy-layers.svg"));
        Assert.Equal(depth, curves.Descendants(ns + "polyline").Count());
    }

    [Fact]
    public void MissingModelAndBadSampleCountFailWithOneSentence()
    {
        string dir = CliRunner.TempDir();
        var none = CliRunner.Run("redundancy", "--out", Path.Combine(dir, "o"));
        Assert.Equal(1, none.ExitCode);
        Assert.Contains("--checkpoint", none.Stderr);
        var bad = CliRunner.Run("redundancy", "--checkpoint", Fixtures.PathOf("mediator_grid4_m4.weights.safetensors"), "--samples", "0",
            "--out", Path.Combine(dir, "o"));
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("--samples", bad.Stderr);
        Assert.DoesNotContain("   at ", bad.Stderr);
    }
}
