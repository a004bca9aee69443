using MediatorDiT.Cuda;
using MediatorDiT.Cuda.Vae;
using MediatorDiT.IO;
using MediatorDiT.Models.Vae;
using MediatorDiT.Tensors;
using MediatorDiT.Tests.Devices;

namespace MediatorDiT.Tests.Cuda.Vae;

/// <summary>
/// On a machine with an NVIDIA GPU: <see cref="DeviceVae"/> on CUDA device 0 (cuBLAS products) decodes and encodes the
/// fixture VAE's tensors as the CPU does, within DeviceVaeTests' bound.
/// </summary>
[Trait("Category", "Gpu")]
public class DeviceVaeGpuTests
{
    [GpuFact]
    public void TheFixtureVaeOnCuda_GivesTheCpuOutputs()
    {
        var vae = VaeFiles.Load(Fixtures.PathOf("vae.weights.safetensors"));
        using var io = SafeTensors.Read(Fixtures.PathOf("vae.io.safetensors"));
        using var cuda = CudaDevice.Open(new DeviceSelection(ComputeDevice.Cuda, 0), "cuda:0");
        using var onDevice = new DeviceVae(vae, cuda.Accelerator);
        AssertClose(vae.Decode(io.GetFloat("z")), onDevice.Decode(io.GetFloat("z")));
        AssertClose(vae.Encode(io.GetFloat("x")).Mean, onDevice.Encode(io.GetFloat("x")).Mean);
    }

    private static void AssertClose(Tensor expected, Tensor actual)
    {
        var e = expected.Span.ToArray();
        var a = actual.Span.ToArray();
        float scale = MathF.Max(1f, e.Max(MathF.Abs));
        float worst = e.Zip(a, (x, y) => MathF.Abs(x - y)).Max();
        Assert.True(worst <= 1e-4f * scale, $"max |device - cpu| = {worst:E3} of scale {scale:E3}");
    }
}
