using MediatorDiT.IO;
using MediatorDiT.Models.Vae;

namespace MediatorDiT.Tests.Vae;

/// <summary>The VAE against diffusers' AutoencoderKL (v0.14) on the small fixture configuration, from both naming schemes.</summary>
public class AutoencoderKlFixtureTests
{
    private const float Tol = 1e-4f;

    [Theory]
    [InlineData("vae.weights.safetensors")]
    [InlineData("vae.modern-names.weights.safetensors")]
    public void EncodeAndDecodeMatchDiffusers(string weightsFile)
    {
        var vae = VaeFiles.Load(Fixtures.PathOf(weightsFile));
        Assert.Equal([32, 64], vae.Config.BlockOutChannels);
        Assert.Equal(1, vae.Config.LayersPerBlock);
        var io = SafeTensors.Read(Fixtures.PathOf("vae.io.safetensors"));

        var posterior = vae.Encode(io.GetFloat("x"));
        Assert.Equal([2, 4, 8, 8], posterior.Mean.Shape);
        TestData.AssertClose(io.GetFloat("posterior.mean").Span, posterior.Mean.Span, Tol, "posterior.mean");
        TestData.AssertClose(io.GetFloat("posterior.logvar").Span, posterior.LogVar.Span, Tol, "posterior.logvar");
        TestData.AssertClose(io.GetFloat("posterior.std").Span, posterior.Std.Span, Tol, "posterior.std");
        TestData.AssertClose(io.GetFloat("z").Span, posterior.Sample(io.GetFloat("eps")).Span, Tol, "z = mean + std * eps");

        var decoded = vae.Decode(io.GetFloat("z"));
        Assert.Equal([2, 3, 16, 16], decoded.Shape);
        TestData.AssertClose(io.GetFloat("decoded").Span, decoded.Span, Tol, "decoded");
        TestData.AssertClose(io.GetFloat("decoded_random").Span, vae.Decode(io.GetFloat("z_random")).Span, Tol, "decoded_random");
    }

    [Fact]
    public void BothNamingSchemesLoadTheSameTensors()
    {
        var older = VaeFiles.Load(Fixtures.PathOf("vae.weights.safetensors"));
        var modern = VaeFiles.Load(Fixtures.PathOf("vae.modern-names.weights.safetensors"));
        for (int i = 0; i < older.Parameters.Count; i++)
            Assert.Equal(older.Parameters[i].Value.Span.ToArray(), modern.Parameters[i].Value.Span.ToArray());
    }

    [Fact]
    public void PipelineAppliesTheLatentScale()
    {
        var pipeline = VaePipeline.Load(Fixtures.PathOf("vae.weights.safetensors"));
        Assert.Equal(VaePipeline.StableDiffusionScale, pipeline.LatentScale);
        var io = SafeTensors.Read(Fixtures.PathOf("vae.io.safetensors"));
        var mean = io.GetFloat("posterior.mean");

        var latents = pipeline.EncodeToLatents(io.GetFloat("x"));
        var scaledMean = mean.Span.ToArray().Select(v => v * VaePipeline.StableDiffusionScale).ToArray();
        TestData.AssertClose(scaledMean, latents.Span, Tol, "EncodeToLatents (mean)");

        var sampled = pipeline.EncodeToLatents(io.GetFloat("x"), new MediatorDiT.Tensors.RandomSource(5));
        Assert.Equal(latents.Shape, sampled.Shape);
        Assert.NotEqual(latents.Span.ToArray(), sampled.Span.ToArray());

        var z = io.GetFloat("z");
        var scaledZ = z.Clone();
        for (int i = 0; i < scaledZ.Length; i++) scaledZ.Span[i] *= VaePipeline.StableDiffusionScale;
        var decoded = pipeline.DecodeLatents(scaledZ);
        TestData.AssertClose(io.GetFloat("decoded").Span, decoded.Span, Tol, "DecodeLatents");
    }

    [Fact]
    public void RepeatedCallsReuseTheWorkspace()
    {
        var vae = VaeFiles.Load(Fixtures.PathOf("vae.weights.safetensors"));
        var io = SafeTensors.Read(Fixtures.PathOf("vae.io.safetensors"));
        var first = vae.Decode(io.GetFloat("z"));
        long held = vae.Workspace.HeldFloats;
        vae.Encode(io.GetFloat("x"));
        var second = vae.Decode(io.GetFloat("z"));
        Assert.Equal(first.Span.ToArray(), second.Span.ToArray());
        Assert.True(vae.Workspace.HeldFloats <= 2 * held, $"workspace grew from {held} to {vae.Workspace.HeldFloats} floats.");
    }
}
