using MediatorDiT.Cuda.Sampling;
using MediatorDiT.Cuda.Vae;
using MediatorDiT.IO;
using MediatorDiT.Models;
using MediatorDiT.Models.Vae;
using MediatorDiT.Pipelines;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;
using MediatorDiT.Tests.Cuda.Kernels;
using MediatorDiT.Tests.Cuda.Sampling;

namespace MediatorDiT.Tests.Cuda.Vae;

/// <summary>
/// <see cref="DeviceVae"/> on ILGPU's CPU accelerator against the CPU <see cref="AutoencoderKl"/> on the fixture VAE
/// (diffusers v0.14's AutoencoderKL, block_out_channels [32, 64], one layer per block: every block kind, the mid-block
/// attention included), through im2col + GEMM and through the direct convolutions, and the seam that makes a latent
/// pipeline on cuda decode on the device. Bound: 1e-4 of max(1, max |expected|): about twenty layers of sums in other
/// orders, each within 1e-5 (VaeKernelsTests), the GroupNorms renormalising in between.
/// </summary>
[Collection(CpuAcceleratorCollection.Name)]
public class DeviceVaeTests(AcceleratorFixture device)
{
    private const float Tolerance = 1e-4f;

    private static readonly Lazy<AutoencoderKl> Fixture = new(() => VaeFiles.Load(Fixtures.PathOf("vae.weights.safetensors")));

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void DecodingAndEncodingOnTheDevice_GiveTheCpuVaes(bool direct)
    {
        var vae = Fixture.Value;
        using var io = SafeTensors.Read(Fixtures.PathOf("vae.io.safetensors"));
        using var onDevice = new DeviceVae(vae, device.Accelerator) { DirectConvolutions = direct };
        var z = io.GetFloat("z");
        AssertClose(vae.Decode(z), onDevice.Decode(z));
        AssertClose(io.GetFloat("decoded"), onDevice.Decode(z)); // and the official output, within the same bound

        var expected = vae.Encode(io.GetFloat("x"));
        var actual = onDevice.Encode(io.GetFloat("x"));
        AssertClose(expected.Mean, actual.Mean);
        AssertClose(expected.LogVar, actual.LogVar);
        AssertClose(expected.Std, actual.Std);
    }

    [Fact]
    public void ABatchOfOtherSizesDecodesImageByImage_AndBadLatentsAreRefusedAsOnTheCpu()
    {
        var vae = Fixture.Value;
        using var onDevice = new DeviceVae(vae, device.Accelerator);
        var latents = new Tensor(2, 4, 3, 5);
        new RandomSource(8).FillGaussian(latents.Span);
        AssertClose(vae.Decode(latents), onDevice.Decode(latents));
        var bad = new Tensor(1, 3, 4, 4);
        Assert.Equal(Assert.Throws<MediatorDiTException>(() => vae.Decode(bad)).Message, Assert.Throws<MediatorDiTException>(() => onDevice.Decode(bad)).Message);
    }

    [Fact]
    public void ALatentPipelineOnCuda_DecodesOnTheDevice_AndGivesTheCpuImages()
    {
        // The tiny ladder's 8 x 8 x 4 latents through the fixture VAE (factor 2): 16 x 16 x 3 images.
        var vae = new VaePipeline(Fixture.Value);
        var options = new GenerationOptions { Sampler = SamplerKind.Sde, Steps = 4, NumImages = 2, BatchSize = 2, Seed = 3, Schedule = new ScheduleChoice.Single(0) };
        var expected = DiffusionPipeline.FromModels(TinyDeviceModels.Ladder(), vae).Generate(options);

        using var factory = new DeviceModelFactory(device.Accelerator);
        var pipeline = DiffusionPipeline.FromModels(TinyDeviceModels.Ladder(), vae, compute: TinyDeviceModels.OnCuda, deviceModels: factory);
        var deviceVae = Assert.IsType<DeviceVae>(pipeline.Vae!.Device);
        Assert.Same(deviceVae, factory.CreateVae(vae.Vae)); // uploaded once per autoencoder
        Assert.Null(DiffusionPipeline.FromModels(TinyDeviceModels.Ladder(), vae, deviceModels: factory).Vae!.Device); // the cpu decodes on the cpu
        var actual = pipeline.Generate(options);
        Assert.Equal([2, 3, 16, 16], actual.Images.Shape);
        TinyDeviceModels.AssertClose(expected.Images, actual.Images);

        // The same seam encodes: scaled posterior means, as the CPU pipeline's.
        AssertClose(vae.EncodeToLatents(expected.Images), pipeline.Vae.EncodeToLatents(expected.Images));
    }

    private static void AssertClose(Tensor expected, Tensor actual)
    {
        Assert.Equal(expected.Shape, actual.Shape);
        var e = expected.Span.ToArray();
        var a = actual.Span.ToArray();
        float scale = MathF.Max(1f, e.Max(MathF.Abs));
        float worst = e.Zip(a, (x, y) => MathF.Abs(x - y)).Max();
        Assert.True(worst <= Tolerance * scale, $"max |device - cpu| = {worst:E3}, allowed {Tolerance * scale:E3} (scale {scale:E3})");
    }
}
