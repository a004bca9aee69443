using MediatorDiT.IO;
using MediatorDiT.Training;
using MediatorDiT.Tests.Cli;
using MediatorDiT.Tests.Devices;

namespace MediatorDiT.Tests.Cuda.Training;

/// <summary>
/// On a machine with an NVIDIA GPU: `mdit train --device cuda` trains the steps the cpu trains, to the same loss
/// and weights within DeviceTrainingBackendTests' tolerance (1e-3 of the tensor's scale; cuBLAS sums in its own order).
/// </summary>
[Trait("Category", "Gpu")]
public class DeviceTrainingGpuTests
{
    [GpuFact]
    public void TrainOnCuda_GivesTheCpuWeights()
    {
        string dir = CliRunner.TempDir();
        var (data, config) = TrainCommandTests.TinyRun(dir, sampleSteps: 2);
        SafeTensorsFile Run(string device)
        {
            string run = Path.Combine(dir, device);
            var r = CliRunner.Run("train", "--config", config, "--dataset", "latents:" + data, "--steps", "3", "--out", run, "--no-progress", "--device", device);
            Assert.True(r.ExitCode == 0, r.Stderr);
            return SafeTensors.Read(TrainingCheckpoint.Latest(run)!);
        }
        var cpu = Run("cpu");
        var cuda = Run("cuda");
        foreach (string name in cpu.Tensors.Keys.Where(k => k.StartsWith("model.", StringComparison.Ordinal) || k.StartsWith("ema.", StringComparison.Ordinal)))
        {
            var expected = cpu.GetFloat(name).Span.ToArray();
            var actual = cuda.GetFloat(name).Span.ToArray();
            float scale = MathF.Max(1e-3f, MathF.Sqrt(expected.Sum(v => v * v) / expected.Length));
            float worst = expected.Zip(actual, (e, a) => MathF.Abs(e - a)).Max();
            float allowed = 1e-3f * MathF.Max(scale, expected.Max(MathF.Abs));
            // The key third of qkv's bias has a true gradient of exactly zero (a shift shared by all keys leaves the
            // softmax as it is), so both devices hold rounding noise there, which AdamW normalises into steps of up to lr.
            if (name.EndsWith("attn.qkv.bias", StringComparison.Ordinal)) allowed += 3 * (float)new TrainConfig().LearningRate;
            Assert.True(worst <= allowed, $"{name}: max |cuda - cpu| = {worst:E3}, allowed {allowed:E3}");
        }
    }
}
