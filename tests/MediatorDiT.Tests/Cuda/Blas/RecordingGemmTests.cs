using MediatorDiT.Cuda.Blas;
using MediatorDiT.Cuda.Performance;
using MediatorDiT.Models;
using MediatorDiT.Tensors;
using MediatorDiT.Tests.Cuda.Kernels;

namespace MediatorDiT.Tests.Cuda.Blas;

/// <summary>
/// The recorder the device check uses to replay a training step's products: it passes every product on unchanged,
/// counts distinct shapes only while recording, and sees every product a network queues (a forward's FLOPs are
/// exactly FlopCounter's).
/// </summary>
[Collection(CpuAcceleratorCollection.Name)]
public class RecordingGemmTests(AcceleratorFixture device)
{
    [Fact]
    public void CountsEachDistinctShapeWhileRecording_AndPassesEveryCallOn()
    {
        var square = GemmShape.Single(false, false, 3, 3, 3, 1f, 3, 3, 1f, 3);
        var accumulateless = square with { Beta = 0f };
        var a = KernelData.Uniform(9, 51);
        var b = KernelData.Uniform(9, 52);
        using var da = device.Upload(a);
        using var db = device.Upload(b);
        using var recorded = device.Upload(new float[9]);
        using var direct = device.Upload(new float[9]);
        using var recorder = new RecordingGemm(new IlgpuGemm(device.Accelerator));
        using var plain = new IlgpuGemm(device.Accelerator);

        recorder.Sgemm(square, da.View, db.View, recorded.View); // not recording: passed on, not counted
        recorder.Recording = true;
        recorder.Sgemm(square, da.View, db.View, recorded.View);
        recorder.Sgemm(accumulateless, da.View, db.View, recorded.View);
        recorder.Sgemm(square, da.View, db.View, recorded.View);
        foreach (var shape in new[] { square, square, accumulateless, square })
            plain.Sgemm(shape, da.View, db.View, direct.View);

        KernelData.AssertSameBits(device.Download(direct), device.Download(recorded));
        Assert.Equal([new RecordedProduct(square, DevicePrecision.Fp32, 2), new RecordedProduct(accumulateless, DevicePrecision.Fp32, 1)], recorder.Products);
        Assert.Equal(2.0 * 27, recorder.Products[0].FlopsPerCall);
        recorder.Clear();
        Assert.Empty(recorder.Products);
    }

    [Theory]
    [InlineData(0, DevicePrecision.Fp32)]
    [InlineData(0, DevicePrecision.Bf16)]
    [InlineData(4, DevicePrecision.Bf16)]
    public void AForwardRecordsEveryProduct_TheFlopCountersCount(int mediators, DevicePrecision precision)
    {
        var config = AttentionKinds.WithMediators(new ModelConfig
        {
            InputSize = 8, PatchSize = 2, InChannels = 4, HiddenSize = 32, Depth = 2, NumHeads = 2, MlpRatio = 2.0, NumClasses = 10, LearnSigma = true,
        }, mediators == 0 ? null : mediators);
        using var work = new DeviceWorkload(device.Accelerator, config, batch: 2, precision) { RecordsProducts = true };
        work.Forward();
        var products = work.RecordProducts(() => work.Forward());

        Assert.All(products, p => Assert.Equal(precision, p.Precision));
        double recorded = products.Sum(p => p.FlopsPerCall * p.Calls);
        // Mediator attention's pooling and position-bias resizes are counted by FlopCounter but run as kernels, not products.
        double notProducts = mediators == 0 ? 0 : 2.0 * 2 * config.Depth * NotProductMacsPerBlock(config);
        Assert.Equal(2.0 * 2 * FlopCounter.Count(config).PerImage - notProducts, recorded, 1e-9 * recorded);
    }

    [Fact]
    public void RecordingNeedsARecordingWorkloadThatHasRun()
    {
        var config = new ModelConfig { InputSize = 4, PatchSize = 2, InChannels = 4, HiddenSize = 16, Depth = 1, NumHeads = 2, NumClasses = 10 };
        using var plain = new DeviceWorkload(device.Accelerator, config, 1, DevicePrecision.Fp32);
        Assert.Throws<InvalidOperationException>(() => plain.RecordProducts(() => plain.Forward()));
        using var recording = new DeviceWorkload(device.Accelerator, config, 1, DevicePrecision.Fp32) { RecordsProducts = true };
        Assert.Throws<InvalidOperationException>(() => recording.RecordProducts(() => { }));
    }

    /// <summary>
    /// Per block and image, what FlopCounter counts in mediator attention beyond its four products: the average pool of
    /// q to the mediators, the bilinear position-bias resizes and the depthwise conv, kernels on the device.
    /// </summary>
    private static double NotProductMacsPerBlock(ModelConfig config) =>
        AttentionKinds.For(config).MixingFlops(config).Sum(part => part.Flops) - FlopCounter.AttentionProductFlopsPerBlock(config);
}
