using MediatorDiT.Evaluation;
using MediatorDiT.IO;
using MediatorDiT.Models;

namespace MediatorDiT.Tests.Cli;

/// <summary>The `mdit` commands end to end, including their answers to bad input.</summary>
public class CliCommandTests
{
    [Fact]
    public void ForwardWritesOutputsThatMatchTheOfficialOnes()
    {
        // The output folder does not exist yet: the command creates it.
        string dir = CliRunner.TempDir();
        string outPath = Path.Combine(dir, "new", "out.safetensors");
        var r = CliRunner.Run("forward", "--weights", Fixtures.PathOf("mediator_grid8_m16.weights.safetensors"),
            "--inputs", Fixtures.PathOf("mediator_grid8_m16.io.safetensors"), "--out", outPath, "--cfg-scale", "4");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var ours = SafeTensors.Read(outPath);
        var io = SafeTensors.Read(Fixtures.PathOf("mediator_grid8_m16.io.safetensors"));
        TestData.AssertClose(io.GetFloat("out").Span, ours.GetFloat("out").Span, 1e-4f, "forward out");
        TestData.AssertClose(io.GetFloat("cfg.out").Span, ours.GetFloat("cfg.out").Span, 1e-4f, "forward cfg.out");
    }

    [Fact]
    public void ForwardWithPtCheckpointNeedsAndUsesAConfigFile()
    {
        string dir = CliRunner.TempDir();
        string outPath = Path.Combine(dir, "out.safetensors");
        var missing = CliRunner.Run("forward", "--weights", Fixtures.PathOf("full_grid8.checkpoint.pt"),
            "--inputs", Fixtures.PathOf("full_grid8.io.safetensors"), "--out", outPath);
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("--config", missing.Stderr);
        Assert.DoesNotContain("   at ", missing.Stderr);

        string configPath = Path.Combine(dir, "config.json");
        File.WriteAllText(configPath, SafeTensors.Read(Fixtures.PathOf("full_grid8.weights.safetensors")).Metadata["config"]);
        var ok = CliRunner.Run("forward", "--weights", Fixtures.PathOf("full_grid8.checkpoint.pt"), "--config", configPath,
            "--inputs", Fixtures.PathOf("full_grid8.io.safetensors"), "--out", outPath);
        Assert.True(ok.ExitCode == 0, ok.Stderr);
        var io = SafeTensors.Read(Fixtures.PathOf("full_grid8.io.safetensors"));
        TestData.AssertClose(io.GetFloat("out").Span, SafeTensors.Read(outPath).GetFloat("out").Span, 1e-4f, "forward from .pt");
    }

    [Fact]
    public void ForwardOnATruncatedWeightsFileFailsWithOneSentenceNamingIt()
    {
        string dir = CliRunner.TempDir();
        string bad = Path.Combine(dir, "cut.safetensors");
        var bytes = File.ReadAllBytes(Fixtures.PathOf("mediator_grid4_m4.weights.safetensors"));
        File.WriteAllBytes(bad, bytes[..(bytes.Length / 2)]);
        var r = CliRunner.Run("forward", "--weights", bad, "--inputs", Fixtures.PathOf("mediator_grid4_m4.io.safetensors"),
            "--out", Path.Combine(dir, "o.safetensors"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("cut.safetensors", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
        Assert.False(File.Exists(Path.Combine(dir, "o.safetensors")));
    }

    [Fact]
    public void ForwardWithInputsOfTheWrongShapeNamesTheShapes()
    {
        // The 4x4-grid inputs given to the 8x8-grid model.
        string dir = CliRunner.TempDir();
        var r = CliRunner.Run("forward", "--weights", Fixtures.PathOf("mediator_grid8_m16.weights.safetensors"),
            "--inputs", Fixtures.PathOf("mediator_grid4_m4.io.safetensors"), "--out", Path.Combine(dir, "o.safetensors"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("[3, 4, 8, 8]", r.Stderr);
        Assert.Contains("16, 16", r.Stderr);
    }

    [Fact]
    public void ConvertWritesTheEmaStateDictAsSafetensors()
    {
        string dir = CliRunner.TempDir();
        string outPath = Path.Combine(dir, "ema.safetensors");
        var r = CliRunner.Run("convert", Fixtures.PathOf("mediator_grid4_m4.checkpoint.pt"), outPath, "--key", "ema");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var converted = SafeTensors.Read(outPath);
        var reference = SafeTensors.Read(Fixtures.PathOf("mediator_grid4_m4.weights.safetensors"));
        Assert.Equal(reference.Tensors.Keys.OrderBy(k => k), converted.Tensors.Keys.OrderBy(k => k));
        foreach (var key in reference.Tensors.Keys)
            Assert.Equal(reference.GetFloat(key).Span.ToArray(), converted.GetFloat(key).Span.ToArray());

        var badKey = CliRunner.Run("convert", Fixtures.PathOf("mediator_grid4_m4.checkpoint.pt"), outPath, "--key", "weights");
        Assert.Equal(1, badKey.ExitCode);
        Assert.Contains("weights", badKey.Stderr);
    }

    [Fact]
    public void FlopsPrintsTheCountersTotalAndBreakdown()
    {
        var r = CliRunner.Run("flops", "--model", "SiT-S/2", "--mediators", "16", "--image-size", "256");
        Assert.True(r.ExitCode == 0, r.Stderr);
        double expected = FlopCounter.Count(ModelRegistry.Get("SiT-S/2", 256, 16)).GFlops;
        Assert.Contains(expected.ToString("F2", System.Globalization.CultureInfo.InvariantCulture), r.Stdout);
        Assert.Contains("MLP", r.Stdout, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void FlopsRejectsANonSquareMediatorCount()
    {
        var r = CliRunner.Run("flops", "--model", "SiT-S/2", "--mediators", "10");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("perfect square", r.Stderr);
        Assert.Contains("10", r.Stderr);
    }
}
