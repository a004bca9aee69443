using MediatorDiT.Cuda.Sampling;
using MediatorDiT.IO;
using MediatorDiT.Models;
using MediatorDiT.Pipelines;
using MediatorDiT.Tensors;
using MediatorDiT.Tests.Cli;
using MediatorDiT.Tests.Devices;

namespace MediatorDiT.Tests.Cuda.Sampling;

/// <summary>
/// On a machine with an NVIDIA GPU: `mdit sample` and `mdit forward` with --device cuda give the cpu's results (the
/// tolerances of DevicePipelineTests and DeviceModelFunctionTests; cuBLAS sums in its own order), and the pipeline
/// refuses a cuda device without a device model factory by naming it.
/// </summary>
[Trait("Category", "Gpu")]
public class DevicePipelineGpuTests
{
    [GpuFact]
    public void SampleOnCuda_GivesTheCpuLatents()
    {
        string dir = CliRunner.TempDir();
        var ladder = string.Join(",", SampleCommandTests.WriteLadder(dir));
        Tensor Run(string device)
        {
            string latents = Path.Combine(dir, $"{device}.safetensors");
            var r = CliRunner.Run("sample", "--ladder", ladder, "--labels", "0,3,7", "--cfg-scale", "2", "--steps", "8", "--switch-at", "0.3,0.6",
                "--save-latents", latents, "--out", Path.Combine(dir, device), "--no-progress", "--device", device);
            Assert.True(r.ExitCode == 0, r.Stderr);
            return SafeTensors.Read(latents).GetFloat("samples");
        }
        AssertClose(Run("cpu"), Run("cuda"), 1e-3f);
    }

    [GpuFact]
    public void ForwardOnCuda_GivesTheCpuOutput()
    {
        string dir = CliRunner.TempDir();
        string weights = SampleCommandTests.WriteLadder(dir)[1];
        var x = new Tensor(4, 4, 16, 16);
        new RandomSource(9).FillGaussian(x.Span);
        var inputs = new Dictionary<string, StoredTensor>
        {
            ["x"] = StoredTensor.FromFloat(x), ["t"] = StoredTensor.FromFloat([0.1f, 0.4f, 0.7f, 0.9f], [4]), ["y"] = StoredTensor.FromInt64([1, 5, 10, 10], [4]),
            ["cfg.x"] = StoredTensor.FromFloat(x), ["cfg.t"] = StoredTensor.FromFloat([0.5f, 0.5f, 0.5f, 0.5f], [4]), ["cfg.y"] = StoredTensor.FromInt64([2, 8, 10, 10], [4]),
        };
        string inputPath = Path.Combine(dir, "in.safetensors");
        SafeTensors.Write(inputPath, inputs);
        SafeTensorsFile Run(string device)
        {
            string output = Path.Combine(dir, $"{device}.safetensors");
            var r = CliRunner.Run("forward", "--weights", weights, "--inputs", inputPath, "--out", output, "--cfg-scale", "3", "--device", device);
            Assert.True(r.ExitCode == 0, r.Stderr);
            return SafeTensors.Read(output);
        }
        var cpu = Run("cpu");
        var cuda = Run("cuda");
        AssertClose(cpu.GetFloat("out"), cuda.GetFloat("out"), 1e-4f);
        AssertClose(cpu.GetFloat("cfg.out"), cuda.GetFloat("cfg.out"), 1e-4f);
    }

    [GpuFact]
    public void APipelineOnCudaNeedsADeviceModelFactory()
    {
        var compute = ComputeContext.WithThreads(1) with { Device = ComputeDevice.Cuda };
        var e = Assert.Throws<MediatorDiTException>(() => DiffusionPipeline.LoadLadder(["/no/such/weights.safetensors"], new PipelineLoadOptions { Compute = compute }));
        Assert.StartsWith("device cuda:0: a pipeline samples on the GPU through a device model factory", e.Message);
        using var factory = DeviceModelFactory.OpenCuda(new DeviceSelection(ComputeDevice.Cuda, 0));
        Assert.StartsWith("cuda:0 (", factory.DeviceName);
    }

    private static void AssertClose(Tensor expected, Tensor actual, float tolerance)
    {
        Assert.Equal(expected.Shape, actual.Shape);
        float scale = 1f, worst = 0f;
        for (int i = 0; i < expected.Length; i++)
        {
            scale = MathF.Max(scale, MathF.Abs(expected.Span[i]));
            worst = MathF.Max(worst, MathF.Abs(expected.Span[i] - actual.Span[i]));
        }
        Assert.True(worst <= tolerance * scale, $"max |cuda - cpu| = {worst:E3}, allowed {tolerance * scale:E3}");
    }
}
