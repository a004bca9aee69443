using MediatorDiT.Cuda.Performance;
using MediatorDiT.Models;
using MediatorDiT.Tensors;
using MediatorDiT.Tests.Cuda.Kernels;

namespace MediatorDiT.Tests.Cuda.Performance;

/// <summary>
/// The stage profile of a device forward and training step on ILGPU's CPU accelerator: every stage the model passes
/// through is named, entered once per block, the matrix products' FLOPs are the layers' own counts, the stages' times
/// add up to the total, and the kernels are left unprofiled afterwards. No time is asserted beyond being non-negative.
/// </summary>
[Collection(CpuAcceleratorCollection.Name)]
public class DeviceStageProfileTests(AcceleratorFixture device)
{
    private const int Depth = 2, Batch = 2;

    private static ModelConfig Tiny(int? mediators) => AttentionKinds.WithMediators(new ModelConfig
    {
        InputSize = 8, PatchSize = 2, InChannels = 4, HiddenSize = 16, Depth = Depth, NumHeads = 2, MlpRatio = 2.0, NumClasses = 10, LearnSigma = true,
    }, mediators);

    private static DeviceStageProfile.Stage Named(DeviceStageProfile profile, string name) =>
        profile.Stages.SingleOrDefault(s => s.Name == name) ?? throw new Xunit.Sdk.XunitException(
            $"no stage \"{name}\" among: {string.Join(", ", profile.Stages.Select(s => s.Name))}");

    [Theory]
    [InlineData(DevicePrecision.Fp32, null)]
    [InlineData(DevicePrecision.Bf16, 4)]
    public void AProfiledForwardNamesEveryStageWithTheProductsFlops(DevicePrecision precision, int? mediators)
    {
        var config = Tiny(mediators);
        using var work = new DeviceWorkload(device.Accelerator, config, Batch, precision);
        var plain = work.Forward();
        var profile = new DeviceStageProfile(device.Accelerator);
        work.ProfileForward(profile);

        int rows = Batch * config.NumTokens, d = config.HiddenSize;
        string core = mediators is null ? "forward: full attention core" : "forward: mediator attention core";
        foreach (string perBlock in new[] { "forward: adaLN modulation", "forward: qkv", core, "forward: proj", "forward: fc1", "forward: gelu", "forward: fc2" })
            Assert.Equal(Depth, Named(profile, perBlock).Calls);
        // Each LayerNorm with the gated residual before it: the first block's alone, then two a block, the last
        // block's second residual with the final layer's LayerNorm.
        Assert.Equal(2 * Depth, Named(profile, "forward: norms and gated residuals").Calls);
        Assert.Equal(1, Named(profile, "forward: embeddings").Calls);
        Assert.Equal(1, Named(profile, "forward: final layer").Calls);
        Assert.Equal(Depth * 2.0 * rows * d * 3 * d, Named(profile, "forward: qkv: product").Flops);
        Assert.Equal(Depth * 2.0 * rows * d * config.MlpHidden, Named(profile, "forward: fc2: product").Flops);
        Assert.Equal(0, Named(profile, "forward: qkv").Flops);
        // In bf16 proj's input comes from the attention core's last step and qkv's from the LayerNorm, unrounded; the
        // embeddings' inputs are rounded before their products.
        Assert.Equal(precision == DevicePrecision.Bf16, profile.Stages.Any(s => s.Name == "forward: embeddings: bf16 rounding"));
        Assert.DoesNotContain(profile.Stages, s => s.Name is "forward: proj: bf16 rounding" or "forward: qkv: bf16 rounding");
        Assert.DoesNotContain(profile.Stages, s => s.Name.StartsWith("backward", StringComparison.Ordinal));
        Assert.All(profile.Stages, s => Assert.True(s.Seconds >= 0, $"{s.Name}: {s.Seconds} s"));
        Assert.Equal(profile.Stages.Sum(s => s.Seconds), profile.TotalSeconds, 12);
        Assert.True(profile.TotalSeconds > 0);

        // The profile only watches: the profiled forward gives the unprofiled one's bits, and later runs leave it alone.
        var stages = profile.Stages.Count;
        double total = profile.TotalSeconds;
        var again = work.Forward();
        Assert.Equal(plain.Span.ToArray(), again.Span.ToArray());
        Assert.Equal(stages, profile.Stages.Count);
        Assert.Equal(total, profile.TotalSeconds);
    }

    [Fact]
    public void AProfiledTrainingStepNamesTheBackwardAndTheOptimiser()
    {
        var config = Tiny(4);
        using var work = new DeviceWorkload(device.Accelerator, config, Batch, DevicePrecision.Fp32, trainingBatches: 2);
        work.TrainStep(0);
        var profile = new DeviceStageProfile(device.Accelerator);
        work.ProfileTrainStep(profile, 1);

        int rows = Batch * config.NumTokens, d = config.HiddenSize;
        foreach (string perBlock in new[] { "backward: fc2", "backward: gelu", "backward: fc1", "backward: proj", "backward: mediator attention core",
                     "backward: qkv", "backward: adaLN modulation", "forward: mediator attention core" })
            Assert.Equal(Depth, Named(profile, perBlock).Calls);
        foreach (string once in new[] { "training: zero gradients, upload the batch", "training: loss", "training: gradient norm and clipping",
                     "training: AdamW, EMA and bf16 weight copies", "backward: final layer", "backward: embeddings" })
            Assert.Equal(1, Named(profile, once).Calls);
        // The weight gradient dy^T x and the input gradient dy W: two products of the forward's size per block.
        Assert.Equal(Depth * 2 * 2.0 * rows * d * 3 * d, Named(profile, "backward: qkv: product").Flops);
        Assert.Equal(Depth, Named(profile, "backward: qkv: bias column sums").Calls);
        Assert.Equal(profile.Stages.Sum(s => s.Seconds), profile.TotalSeconds, 12);
        Assert.All(profile.Stages, s => Assert.True(s.Seconds >= 0, $"{s.Name}: {s.Seconds} s"));
    }

    [Fact]
    public void ProfilingBeforeTheFirstRunIsRefused()
    {
        using var work = new DeviceWorkload(device.Accelerator, Tiny(null), Batch, DevicePrecision.Fp32);
        var profile = new DeviceStageProfile(device.Accelerator);
        var error = Assert.Throws<InvalidOperationException>(() => work.ProfileForward(profile));
        Assert.Contains("run the workload once", error.Message);
        using (DeviceStageProfile.Enter(null, "nothing")) { } // a null profile's scope does nothing
        Assert.Empty(profile.Stages);
    }
}
