using System.Text.Json;
using MediatorDiT.Diffusion;
using MediatorDiT.IO;
using MediatorDiT.Models;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Cli;

/// <summary>
/// `mdit sample` on checkpoints as they are released (bare state dicts, no config): DiT with its Gaussian
/// diffusion (respaced ancestral, DDIM, guidance) and SiT with its samplers; bad checkpoints and sizes.
/// </summary>
public class PretrainedSamplingTests
{
    private static string Bare(string fixture, string dir, string name)
    {
        string path = Path.Combine(dir, name);
        SafeTensors.Write(path, SafeTensors.Read(Fixtures.PathOf(fixture)).Tensors);
        return path;
    }

    /// <summary>What the command must compute: every image's z and draws from its own generator, seeded by (seed 0, its index).</summary>
    private static Tensor Expected(string diffusionSpec, bool ddim, int[] labels, float scale)
    {
        var model = ModelFiles.Load(Fixtures.PathOf("dit_model.weights.safetensors"));
        var noise = new IndexedNoiseSource(0, Enumerable.Range(0, labels.Length).ToArray());
        var z = noise.InitialNoise([4, 16, 16]);
        return MediatorDiT.Tests.Sampling.DiffusionSamplerTests.Sample(GaussianDiffusion.Create(diffusionSpec), model, z, labels, scale, noise, ddim: ddim);
    }

    [Theory]
    [InlineData("dit_model.pt", false)]
    [InlineData("dit_model.pt", true)]
    [InlineData("bare-safetensors", false)]
    public void DitCheckpointsSampleAsDitsDiffusionDoes(string checkpoint, bool ddim)
    {
        string dir = CliRunner.TempDir();
        string weights = checkpoint == "bare-safetensors" ? Bare("dit_model.weights.safetensors", dir, "DiT-tiny.safetensors") : Fixtures.PathOf(checkpoint);
        string latents = Path.Combine(dir, "latents.safetensors");
        string[] stepsOption = ddim ? ["--ddim", "5", "--eta", "0"] : ["--diffusion-steps", "10"];
        var r = CliRunner.Run(["sample", "--checkpoint", weights, "--num-heads", "4", "--labels", "3,7", "--cfg-scale", "4", .. stepsOption,
            "--vae", Fixtures.PathOf("vae.weights.safetensors"), "--save-latents", latents, "--out", Path.Combine(dir, "out"), "--no-progress"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("DiT, hidden 64, depth 2, 4 heads, patch 2, full attention, 10 classes", r.Stderr);

        var expected = Expected(ddim ? "ddim5" : "10", ddim, [3, 7], 4f);
        TestData.AssertClose(expected.Span, SafeTensors.Read(latents).GetFloat("samples").Span, 1e-4f, "DiT samples");
        foreach (string png in new[] { "000000.png", "000001.png", "grid.png" })
            Assert.True(File.Exists(Path.Combine(dir, "out", png)), png);
        using var record = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "out", "run.json")));
        Assert.Equal("DiT", record.RootElement.GetProperty("family").GetString());
        Assert.Equal(ddim ? "ddim5 eta 0" : "ancestral 10", record.RootElement.GetProperty("sampler").GetString());
    }

    /// <summary>Writes the fixture's chain10.z as 'z' and its chain draws (the first <paramref name="draws"/>) as 'noise'.</summary>
    private static (string Z, string Noise, string Labels) WriteChainReplay(string dir, int draws = 10)
    {
        var io = SafeTensors.Read(Fixtures.PathOf("dit_diffusion.io.safetensors"));
        string z = Path.Combine(dir, "z.safetensors"), noise = Path.Combine(dir, "noise.safetensors");
        SafeTensors.Write(z, new Dictionary<string, StoredTensor> { ["z"] = StoredTensor.FromFloat(io.GetFloat("chain10.z")) });
        SafeTensors.Write(noise, new Dictionary<string, StoredTensor> { ["noise"] = StoredTensor.FromFloat(MediatorDiT.Tests.Sampling.DiffusionSamplerTests.ChainDraws(io, draws)) });
        return (z, noise, string.Join(",", io.GetInt64("y")));
    }

    [Fact]
    public void RecordedDrawsReplayTheOfficialDitChain()
    {
        string dir = CliRunner.TempDir();
        var (z, noise, labels) = WriteChainReplay(dir);
        string latents = Path.Combine(dir, "latents.safetensors");
        var r = CliRunner.Run("sample", "--checkpoint", Fixtures.PathOf("dit_model.weights.safetensors"), "--diffusion-steps", "10", "--labels", labels,
            "--initial-noise", z, "--noise-file", noise, "--save-latents", latents, "--out", Path.Combine(dir, "out"), "--no-progress");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var io = SafeTensors.Read(Fixtures.PathOf("dit_diffusion.io.safetensors"));
        TestData.AssertClose(io.GetFloat("chain10.final").Span, SafeTensors.Read(latents).GetFloat("samples").Span, 1e-4f, "chain10.final");

        // DDIM with eta above 0 takes one draw per step from the file too.
        string ddimLatents = Path.Combine(dir, "ddim.safetensors");
        var d = CliRunner.Run("sample", "--checkpoint", Fixtures.PathOf("dit_model.weights.safetensors"), "--ddim", "10", "--eta", "0.5", "--labels", labels,
            "--initial-noise", z, "--noise-file", noise, "--save-latents", ddimLatents, "--out", Path.Combine(dir, "out-ddim"), "--no-progress");
        Assert.True(d.ExitCode == 0, d.Stderr);
        var model = ModelFiles.Load(Fixtures.PathOf("dit_model.weights.safetensors"));
        var expected = MediatorDiT.Tests.Sampling.DiffusionSamplerTests.Sample(GaussianDiffusion.Create("ddim10"), model, io.GetFloat("chain10.z"), io.GetInt64("y").Select(v => (int)v).ToArray(), 1f,
            new ReplayNoiseSource(SafeTensors.Read(noise).GetFloat("noise")), ddim: true, eta: 0.5f);
        TestData.AssertClose(expected.Span, SafeTensors.Read(ddimLatents).GetFloat("samples").Span, 1e-4f, "ddim10 eta 0.5");
    }

    [Theory]
    [InlineData(9, new string[0], "noise.safetensors has 9 draws left but the run needs 10, one per step that adds noise.")]
    [InlineData(10, new[] { "--cfg-scale", "4" }, "holds draws of shape [3, 4, 16, 16] but the sampler's state is [6, 4, 16, 16]")]
    [InlineData(10, new[] { "--ddim", "10", "--eta", "0" }, "DDIM with --eta 0 uses no noise after z")]
    public void ANoiseFileThatDoesNotFitIsOneSentence(int draws, string[] extra, string expected)
    {
        string dir = CliRunner.TempDir();
        var (z, noise, labels) = WriteChainReplay(dir, draws);
        string latents = Path.Combine(dir, "latents.safetensors");
        var r = CliRunner.Run(["sample", "--checkpoint", Fixtures.PathOf("dit_model.weights.safetensors"), "--diffusion-steps", "10", "--labels", labels,
            "--initial-noise", z, "--noise-file", noise, .. extra, "--save-latents", latents, "--out", Path.Combine(dir, "out"), "--no-progress"]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains(expected, r.Stderr);
        Assert.Contains("--noise-file", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
        Assert.False(File.Exists(latents));
    }

    [Fact]
    public void ABareSitCheckpointSamplesAsTheSameWeightsWithTheirConfig()
    {
        string dir = CliRunner.TempDir();
        string bare = Bare("mediator_grid8_m16.weights.safetensors", dir, "SiT-m16.safetensors");
        string[] common = ["--labels", "1,2", "--mode", "ode", "--method", "heun", "--steps", "4", "--out", Path.Combine(dir, "o"), "--no-progress"];
        var a = CliRunner.Run(["sample", "--checkpoint", bare, "--save-latents", Path.Combine(dir, "a.safetensors"), .. common]);
        Assert.True(a.ExitCode == 0, a.Stderr);
        Assert.Contains("SiT, hidden 64, depth 2, 4 heads, patch 2, 16 mediators", a.Stderr);
        var b = CliRunner.Run(["sample", "--checkpoint", Fixtures.PathOf("mediator_grid8_m16.weights.safetensors"), "--save-latents", Path.Combine(dir, "b.safetensors"), .. common]);
        Assert.True(b.ExitCode == 0, b.Stderr);
        Assert.Equal(SafeTensors.Read(Path.Combine(dir, "b.safetensors")).GetFloat("samples").Span.ToArray(),
            SafeTensors.Read(Path.Combine(dir, "a.safetensors")).GetFloat("samples").Span.ToArray());
    }

    [Fact]
    public void ASitTrainingCheckpointInPtFormSamplesAsItsSafetensorsTwin()
    {
        string dir = CliRunner.TempDir();
        string pt = Path.Combine(dir, "SiT-full-grid8.pt");
        File.Copy(Fixtures.PathOf("full_grid8.checkpoint.pt"), pt);
        string[] common = ["--labels", "4", "--mode", "sde", "--method", "euler", "--steps", "3", "--out", Path.Combine(dir, "o"), "--no-progress"];
        var a = CliRunner.Run(["sample", "--checkpoint", pt, "--num-heads", "4", "--save-latents", Path.Combine(dir, "a.safetensors"), .. common]);
        Assert.True(a.ExitCode == 0, a.Stderr);
        var b = CliRunner.Run(["sample", "--checkpoint", Fixtures.PathOf("full_grid8.weights.safetensors"), "--save-latents", Path.Combine(dir, "b.safetensors"), .. common]);
        Assert.True(b.ExitCode == 0, b.Stderr);
        Assert.Equal(SafeTensors.Read(Path.Combine(dir, "b.safetensors")).GetFloat("samples").Span.ToArray(),
            SafeTensors.Read(Path.Combine(dir, "a.safetensors")).GetFloat("samples").Span.ToArray());
    }

    [Fact]
    public void ACheckpointOfUnknownFamilyIsRefusedWithTheOptionToUse()
    {
        string dir = CliRunner.TempDir();
        string bare = Bare("dit_model.weights.safetensors", dir, "model.safetensors");
        var r = CliRunner.Run("sample", "--checkpoint", bare, "--num-heads", "4", "--save-latents", Path.Combine(dir, "l.safetensors"), "--out", Path.Combine(dir, "o"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("--family DiT or --family SiT", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);

        var bad = CliRunner.Run("sample", "--checkpoint", bare, "--family", "UNet", "--save-latents", Path.Combine(dir, "l.safetensors"), "--out", Path.Combine(dir, "o"));
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("'UNet' is not a known model family", bad.Stderr);

        var ok = CliRunner.Run("sample", "--checkpoint", bare, "--family", "DiT", "--num-heads", "4", "--diffusion-steps", "2", "--labels", "1",
            "--save-latents", Path.Combine(dir, "l.safetensors"), "--out", Path.Combine(dir, "o"), "--no-progress");
        Assert.True(ok.ExitCode == 0, ok.Stderr);
    }

    [Fact]
    public void WeightsThatAreNotADitOrSitNameTheMissingKey()
    {
        string dir = CliRunner.TempDir();
        var r = CliRunner.Run("sample", "--checkpoint", Fixtures.PathOf("vae.weights.safetensors"), "--family", "DiT",
            "--save-latents", Path.Combine(dir, "l.safetensors"), "--out", Path.Combine(dir, "o"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("x_embedder.proj.weight", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
    }

    [Fact]
    public void AnImageSizeTheCheckpointDoesNotSupportIsRefused()
    {
        string dir = CliRunner.TempDir();
        var r = CliRunner.Run("sample", "--checkpoint", Fixtures.PathOf("dit_model.pt"), "--num-heads", "4", "--image-size", "256",
            "--save-latents", Path.Combine(dir, "l.safetensors"), "--out", Path.Combine(dir, "o"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("--image-size 256", r.Stderr);
        Assert.Contains("128x128", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
        Assert.False(File.Exists(Path.Combine(dir, "l.safetensors")));

        var fits = CliRunner.Run("sample", "--checkpoint", Fixtures.PathOf("dit_model.pt"), "--num-heads", "4", "--image-size", "128",
            "--diffusion-steps", "2", "--labels", "0", "--save-latents", Path.Combine(dir, "l.safetensors"), "--out", Path.Combine(dir, "o"), "--no-progress");
        Assert.True(fits.ExitCode == 0, fits.Stderr);
    }
}
