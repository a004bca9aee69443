using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using MediatorDiT.Cuda.Models;
using MediatorDiT.Cuda.Performance;
using MediatorDiT.Cuda.Sampling;
using MediatorDiT.Cuda.Training;
using MediatorDiT.Diffusion;
using MediatorDiT.Evaluation.Performance;
using MediatorDiT.Models;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Cuda.Models;

/// <summary>
/// The full-attention core setting: its written forms, and the refusal of the fused core where its kernels cannot run
/// (fp32 products; ILGPU's default CPU device, warps of 4 lanes; heads odd or wider than 80) by every object that
/// takes it, in one sentence, before it allocates anything; the tiles run everywhere. The fused kernels' results are
/// held to the tiles' in AttentionProductsTests, DeviceModelFactoryTests and DeviceTrainingFusedAttentionTests.
/// </summary>
public class FullAttentionCoreTests
{
    private const string Fp32Refusal = "the fused full-attention core runs bf16 products only; these are fp32 (use bf16, or the tiles).";

    [Theory]
    [InlineData("tiles", FullAttentionCore.Tiles)]
    [InlineData(" Fused ", FullAttentionCore.Fused)]
    [InlineData("FUSED", FullAttentionCore.Fused)]
    public void TheWrittenForms_ParseAndNameEachOther(string text, FullAttentionCore expected)
    {
        Assert.True(FullAttentionCores.TryParse(text, out var core));
        Assert.Equal(expected, core);
        Assert.Equal(expected, FullAttentionCores.Parse(core.Name()));
        Assert.Equal(text.Trim().ToLowerInvariant(), core.Name());
        // The other core (what a comparison times beside it) is the other form, and back again.
        Assert.Equal(expected == FullAttentionCore.Tiles ? "fused" : "tiles", core.Other().Name());
        Assert.Equal(core, core.Other().Other());
    }

    [Theory]
    [InlineData("flash")]
    [InlineData("")]
    [InlineData(null)]
    public void AnotherForm_IsOneSentence(string? text)
    {
        Assert.False(FullAttentionCores.TryParse(text, out _));
        var e = Assert.Throws<MediatorDiTException>(() => FullAttentionCores.Parse(text, "--full-attention"));
        Assert.Equal($"--full-attention must be tiles or fused, got '{text}'.", e.Message);
    }

    [Fact]
    public void TheFusedCore_RunsOnBf16ProductsOn32LaneWarps_TheTilesEverywhere()
    {
        using var context = Context.Create(builder => builder.CPU(CPUDevice.Default).CPU(CPUDevice.Nvidia));
        using var fourLanes = context.CreateCPUAccelerator(0);
        using var cudaShaped = context.CreateCPUAccelerator(1);
        Assert.Equal(4, fourLanes.WarpSize);
        Assert.Equal(32, cudaShaped.WarpSize);
        foreach (var accelerator in new Accelerator[] { fourLanes, cudaShaped })
            foreach (var precision in new[] { DevicePrecision.Fp32, DevicePrecision.Bf16 })
                FullAttentionCore.Tiles.Check(accelerator, precision); // no refusal
        FullAttentionCore.Fused.Check(cudaShaped, DevicePrecision.Bf16);
        Assert.Equal(Fp32Refusal, Assert.Throws<MediatorDiTException>(() => FullAttentionCore.Fused.Check(cudaShaped, DevicePrecision.Fp32)).Message);
        var e = Assert.Throws<MediatorDiTException>(() => FullAttentionCore.Fused.Check(fourLanes, DevicePrecision.Bf16));
        Assert.Equal("the fused full-attention core needs warps of 32 lanes, groups of 128 threads and, on CUDA, compute capability 8.0 or later; " +
                     $"{fourLanes.Name} is not one (use the tiles).", e.Message);
    }

    [Fact]
    public void TheFusedCore_TakesHeadsEvenAndAtMost80Wide_OfFullAttentionOnly()
    {
        foreach (int heads in new[] { 1, 2, 3 }) // SiT-XL's width 1,152: heads of 1,152, 576 and 384
            Assert.Throws<MediatorDiTException>(() => FullAttentionCore.Fused.Check(Config(1152, heads)));
        FullAttentionCore.Fused.Check(Config(1152, 16)); // 72, SiT-XL/2's
        FullAttentionCore.Fused.Check(Config(384, 6)); // 64, SiT-S/2's
        FullAttentionCore.Fused.Check(Config(160, 2)); // 80, the widest taken
        var wide = Config(192, 2);
        FullAttentionCore.Tiles.Check(wide);
        FullAttentionCore.Fused.Check(AttentionKinds.WithMediators(wide, 4)); // mediator attention does not use it
        var e = Assert.Throws<MediatorDiTException>(() => FullAttentionCore.Fused.Check(wide));
        Assert.Equal("the fused full-attention core takes heads even and at most 80 wide; this model's are 96 (hidden size 192 over 2 heads; use the tiles).",
            e.Message);
        Assert.Throws<MediatorDiTException>(() => FullAttentionCore.Fused.Check(Config(42, 2))); // 21: odd
    }

    [Fact]
    public void EveryObjectThatTakesTheCore_RefusesTheFusedOneWhereItCannotRun()
    {
        using var context = Context.Create(builder => builder.CPU(CPUDevice.Default).CPU(CPUDevice.Nvidia));
        using var fourLanes = context.CreateCPUAccelerator(0);
        using var cudaShaped = context.CreateCPUAccelerator(1);
        var model = new SiTModel(Config(32, 2));
        var wideModel = new SiTModel(Config(192, 2));
        const FullAttentionCore fused = FullAttentionCore.Fused;
        string fourLaneRefusal = Assert.Throws<MediatorDiTException>(() => fused.Check(fourLanes, DevicePrecision.Bf16)).Message;
        string wideRefusal = Assert.Throws<MediatorDiTException>(() => fused.Check(wideModel.Config)).Message;

        Refuses(Fp32Refusal, () => new DeviceModelFactory(cudaShaped, fullAttention: fused)); // fp32 unless asked
        Refuses(fourLaneRefusal, () => new DeviceModelFactory(fourLanes, precision: DevicePrecision.Bf16, fullAttention: fused));
        using (var factory = new DeviceModelFactory(cudaShaped, precision: DevicePrecision.Bf16, fullAttention: fused))
        {
            Assert.Equal(fused, factory.FullAttention);
            Refuses(wideRefusal, () => factory.Network(wideModel));
        }
        Refuses(Fp32Refusal, () => new DeviceModelFunction(model, cudaShaped, fullAttention: fused));
        Refuses(fourLaneRefusal, () => new DeviceModelFunction(model, fourLanes, precision: DevicePrecision.Bf16, fullAttention: fused));
        Refuses(wideRefusal, () => new DeviceModelFunction(wideModel, cudaShaped, precision: DevicePrecision.Bf16, fullAttention: fused));

        Refuses(Fp32Refusal, () => new DeviceTrainingBackend(cudaShaped, new Transport(), fullAttention: fused));
        Refuses(fourLaneRefusal, () => new DeviceTrainingBackend(fourLanes, new Transport(), DevicePrecision.Bf16, fullAttention: fused));
        using (var backend = new DeviceTrainingBackend(cudaShaped, new Transport(), DevicePrecision.Bf16, fullAttention: fused))
        {
            Assert.Equal(fused, backend.FullAttention);
            var (net, ema, opt) = Training.DeviceTrainingBackendTests.Run(wideModel.Config, [], 3);
            Refuses(wideRefusal, () => backend.Attach(net, ema, opt));
            Assert.Null(backend.State); // refused before the device state is made
        }

        using (var work = new DeviceWorkload(fourLanes, model.Config, 1, DevicePrecision.Bf16) { FullAttention = fused })
            Refuses(fourLaneRefusal, () => work.Forward());
        using (var work = new DeviceWorkload(cudaShaped, wideModel.Config, 1, DevicePrecision.Bf16) { FullAttention = fused })
            Refuses(wideRefusal, () => work.TrainStep());
        Refuses(Fp32Refusal, () => DevicePerformanceSuite.Run(cudaShaped, "the CPU accelerator", DevicePrecision.Fp32, new PerformanceOptions(1, Quick: true),
            fullAttention: fused));
    }

    private static void Refuses(string expected, Func<object> build)
    {
        var e = Assert.Throws<MediatorDiTException>(() => (build() as IDisposable)?.Dispose());
        Assert.Equal(expected, e.Message);
    }

    private static void Refuses(string expected, Action run) => Assert.Equal(expected, Assert.Throws<MediatorDiTException>(run).Message);

    /// <summary>A full-attention SiT of width <paramref name="hidden"/> over <paramref name="heads"/> heads on a 4 x 4 token grid.</summary>
    private static ModelConfig Config(int hidden, int heads) => new()
    {
        InputSize = 8, PatchSize = 2, InChannels = 4, HiddenSize = hidden, Depth = 1, NumHeads = heads, MlpRatio = 2.0, NumClasses = 3,
        Attention = AttentionKind.Full,
    };
}
