using System.Text.Json;
using MediatorDiT.Cuda.Performance;
using MediatorDiT.Evaluation.Performance;
using MediatorDiT.Models;
using MediatorDiT.Tensors;
using MediatorDiT.Tests.Cuda.Kernels;

namespace MediatorDiT.Tests.Cuda.Performance;

/// <summary>
/// The device bench (`mdit bench --device`) on ILGPU's CPU accelerator with tiny models: every case present, named as
/// the CPU bench names them, with real (finite, positive, consistent) figures in the table and the JSON; the peak table;
/// the synchronised timing helpers. No timing is asserted.
/// </summary>
[Collection(CpuAcceleratorCollection.Name)]
public class DevicePerformanceSuiteTests(AcceleratorFixture device)
{
    internal static ModelConfig Tiny(int mediators, int inputSize = 8) => AttentionKinds.WithMediators(new ModelConfig
    {
        InputSize = inputSize, PatchSize = 2, InChannels = 4, HiddenSize = 32, Depth = 1, NumHeads = 2, MlpRatio = 2.0, NumClasses = 10, LearnSigma = true,
    }, mediators == 0 ? null : mediators);

    /// <summary>16 and 64 tokens, mediators 4 of 16 and 4 of 64, 32^3 products: seconds on the CPU accelerator.</summary>
    internal static DeviceBenchCases TinyCases => new(Tiny(0), Tiny(4), 2, 2, Tiny(0, 16), Tiny(4, 16), 1, 32);

    [Theory]
    [InlineData(DevicePrecision.Fp32)]
    [InlineData(DevicePrecision.Bf16)]
    public void AQuickRunOnTheCpuAccelerator_GivesAWellFormedReport(DevicePrecision precision)
    {
        var steps = new List<string>();
        var report = DevicePerformanceSuite.Run(device.Accelerator, "the CPU accelerator", precision, new PerformanceOptions(1, Quick: true),
            new InlineProgress(steps), cases: TinyCases);

        Assert.Equal("the CPU accelerator", report.Device);
        Assert.Equal(DevicePrecisions.Name(precision), report.Precision);
        Assert.Equal("tiles", report.FullAttentionCore);
        Assert.Equal("ILGPU GEMM kernels", report.GemmBackend);
        Assert.Null(report.PeakGflops); // no peak is known for the CPU accelerator
        Assert.Equal(32, report.GemmSize);
        Assert.Equal(4, steps.Count);
        Assert.True(double.IsFinite(report.SgemmGflops) && report.SgemmGflops > 0, $"GEMM {report.SgemmGflops}");

        Assert.Equal(["forward full", "forward m4", "train step full", "train step m4", "forward full 64", "forward m4 64"], report.Cases.Select(c => c.Name));
        Assert.Equal([16, 16, 16, 16, 64, 64], report.Cases.Select(c => c.Tokens));
        Assert.Equal([2, 2, 2, 2, 1, 1], report.Cases.Select(c => c.Batch));
        Assert.Equal([false, false, true, true, false, false], report.Cases.Select(c => c.Training));
        foreach (var c in report.Cases)
        {
            Assert.True(double.IsFinite(c.MedianSeconds) && c.MedianSeconds > 0, $"{c.Name}: {c.MedianSeconds} s");
            Assert.Equal(c.Batch / c.MedianSeconds, c.ImagesPerSecond, 9);
            var config = c.Tokens == 16 ? Tiny(c.Mediators) : Tiny(c.Mediators, 16);
            double flops = 2 * FlopCounter.Count(config).PerImage * c.Batch * (c.Training ? 3 : 1);
            Assert.Equal(flops / c.MedianSeconds / 1e9, c.Gflops, 9);
            Assert.Equal(c.Gflops / report.SgemmGflops, c.OfSgemm, 9);
            Assert.Null(c.OfPeak);
        }
        Assert.True(report.MediatorTimeRatio256 > 0 && double.IsFinite(report.MediatorTimeRatio256));
        Assert.Equal(FlopCounter.Count(Tiny(4)).PerImage / FlopCounter.Count(Tiny(0)).PerImage, report.MediatorFlopRatio256, 12);
        Assert.True(report.Mediator4096Speedup is double s && s > 0 && double.IsFinite(s));
        Assert.Null(report.ThreadSpeedup);
        Assert.Null(report.OtherFullAttentionCore); // no comparison asked for
        Assert.Empty(report.OtherCoreCases);
        Assert.Empty(report.FusedSpeedups);

        string table = report.ToTable();
        Assert.StartsWith($"device the CPU accelerator, {DevicePrecisions.Name(precision)} matrix products by ILGPU GEMM kernels, full attention's core as tiles; host ", table);
        Assert.Contains("no peak known for this device", table);
        Assert.Contains("m4 / full forward time at 16 tokens", table);
        Assert.Contains("64 tokens: 4 mediators", table);
        Assert.DoesNotContain("managed allocation", table); // a CPU figure
        Assert.DoesNotContain("compared", table);

        using var stream = new MemoryStream();
        report.WriteJson(stream);
        var root = JsonDocument.Parse(stream.ToArray()).RootElement;
        Assert.Equal("the CPU accelerator", root.GetProperty("device").GetString());
        Assert.Equal(DevicePrecisions.Name(precision), root.GetProperty("precision").GetString());
        Assert.Equal("tiles", root.GetProperty("full_attention_core").GetString()); // the default
        Assert.Equal(JsonValueKind.Null, root.GetProperty("other_full_attention_core").ValueKind);
        Assert.Equal(0, root.GetProperty("other_core_cases").GetArrayLength());
        Assert.Empty(root.GetProperty("fused_speedups").EnumerateObject());
        Assert.Equal(JsonValueKind.Null, root.GetProperty("peak_gflops").ValueKind);
        Assert.Equal(32, root.GetProperty("gemm_size").GetInt32());
        Assert.Equal(6, root.GetProperty("cases").GetArrayLength());
        var first = root.GetProperty("cases")[0];
        Assert.True(first.GetProperty("images_per_second").GetDouble() > 0);
        Assert.True(first.GetProperty("gflops").GetDouble() > 0);
        Assert.Equal(JsonValueKind.Null, first.GetProperty("of_peak").ValueKind);
    }

    [Fact]
    public void WithoutTheLargePairOnlyTheShortCasesRun()
    {
        var report = DevicePerformanceSuite.Run(device.Accelerator, "cpu accelerator", DevicePrecision.Fp32, new PerformanceOptions(1, Quick: true, Large: false),
            cases: TinyCases);
        Assert.Equal(4, report.Cases.Count);
        Assert.Null(report.Mediator4096Speedup);
    }

    [Fact]
    public void AComparisonOfTheCores_IsRefusedBeforeAnyWork_WhereTheFusedCoreCannotRun()
    {
        var steps = new List<string>();
        var options = new PerformanceOptions(1, Quick: true);
        var warps = Assert.Throws<MediatorDiTException>(() => DevicePerformanceSuite.Run(device.Accelerator, "cpu accelerator", DevicePrecision.Bf16, options,
            new InlineProgress(steps), cases: TinyCases, compareCores: true));
        Assert.Equal($"the fused full-attention core needs {MediatorDiT.Cuda.Kernels.KernelSet.FlashKernelsNeed}; {device.Accelerator.Name} is not one (use the tiles).",
            warps.Message);
        var fp32 = Assert.Throws<MediatorDiTException>(() => DevicePerformanceSuite.Run(device.Accelerator, "cpu accelerator", DevicePrecision.Fp32, options,
            new InlineProgress(steps), cases: TinyCases, compareCores: true));
        Assert.Equal("the fused full-attention core runs bf16 products only; these are fp32 (use bf16, or the tiles).", fp32.Message);
        Assert.Empty(steps); // nothing timed, not even the yardstick
    }

    [Fact]
    public void AKnownCardsPeakIsStatedAndEachCaseComparedWithIt()
    {
        var report = new PerformanceReport { Device = "cuda:0 (NVIDIA H200)", Precision = "bf16", GemmBackend = "cuBLAS", PeakGflops = 989e3, PeakDescription = "H200 SXM dense bf16 tensor-core peak", SgemmGflops = 5e5 };
        report.Cases.Add(new CaseResult("forward full", 256, 0, 4, false, 0.01, 400, 2e5, 0.4, 2e5 / 989e3));
        report.Cases.Add(new CaseResult("forward m16", 256, 16, 4, false, 0.01, 400, 1e5, 0.2, 1e5 / 989e3));
        string table = report.ToTable();
        Assert.Contains("GEMM 1024^3 (bf16) on the device: 500000.0 GFLOP/s; limit: H200 SXM dense bf16 tensor-core peak, 989000 GFLOP/s", table);
        Assert.Contains(" of peak", table);
        Assert.Contains("20.2 %", table); // the case's 200,000 GFLOP/s of the 989,000
    }

    [Theory]
    [InlineData("NVIDIA H200", DevicePrecision.Bf16, 989e12)]
    [InlineData("NVIDIA H200", DevicePrecision.Fp32, 67e12)]
    [InlineData("NVIDIA H100 80GB HBM3", DevicePrecision.Bf16, 989e12)]
    [InlineData("NVIDIA H100 PCIe", DevicePrecision.Fp32, 51e12)]
    [InlineData("NVIDIA A100-SXM4-80GB", DevicePrecision.Bf16, 312e12)]
    [InlineData("NVIDIA H200 NVL", DevicePrecision.Bf16, null)]
    [InlineData("CPUAccelerator", DevicePrecision.Fp32, null)]
    public void ThePeakTableKnowsTheCardsItNames(string name, DevicePrecision precision, double? expected) =>
        Assert.Equal(expected, DevicePeaks.For(name, precision)?.FlopsPerSecond);

    [Fact]
    public void InterleavedTimingRunsEachCaseWarmupsPlusRepeatsTimesInTurn()
    {
        var order = new List<char>();
        var times = DeviceTiming.Interleaved(device.Accelerator, 2, 3, CancellationToken.None, () => order.Add('a'), () => order.Add('b'));
        Assert.Equal("ababababab", new string(order.ToArray()));
        Assert.Equal([3, 3], times.Select(t => t.Length));
        Assert.All(times.SelectMany(t => t), s => Assert.True(s >= 0));
        var calls = new List<int>();
        Assert.Single(DeviceTiming.Time(device.Accelerator, 1, 1, calls.Add));
        Assert.Equal([0, 1], calls);
        Assert.Equal(2.5, DeviceTiming.Median([4, 1, 2, 3]));
        Assert.Equal(2, DeviceTiming.Ratio([2, 4, 8], [1, 2, 2]));
    }

    internal sealed class InlineProgress(List<string> steps) : IProgress<string>
    {
        public void Report(string value) => steps.Add(value);
    }
}
