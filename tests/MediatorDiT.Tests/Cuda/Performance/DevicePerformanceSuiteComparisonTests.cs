using System.Text.Json;
using MediatorDiT.Cuda.Models;
using MediatorDiT.Cuda.Performance;
using MediatorDiT.Evaluation.Performance;
using MediatorDiT.Models;
using MediatorDiT.Tensors;
using MediatorDiT.Tests.Cuda.Kernels;
using Xunit.Abstractions;

namespace MediatorDiT.Tests.Cuda.Performance;

/// <summary>
/// `mdit bench --device cuda --compare-full-attention` (<see cref="DevicePerformanceSuite.Run"/> with compareCores) on the
/// CPU accelerator shaped as a GPU (32-lane warps, where the fused kernels run), with the tiny cases of
/// <see cref="DevicePerformanceSuiteTests"/>: each full-attention case also on the other core, named after it, with the
/// fused core's speedup over the tiles; the chosen core's cases and ratios as without the comparison. One image per
/// call, one timed round after one warm-up and no long pair, as a call on 32-lane warps takes seconds here (each group's
/// threads are threads of the host). No timing is asserted.
/// </summary>
[Collection(CudaShapedAcceleratorCollection.Name)]
public class DevicePerformanceSuiteComparisonTests(CudaShapedAcceleratorFixture device, ITestOutputHelper output)
{
    private static readonly string[] FullCases = ["forward full", "train step full"];

    [Fact]
    public void EachFullAttentionCase_IsTimedOnTheFusedCoreToo_WithItsSpeedupOverTheTiles()
    {
        var steps = new List<string>();
        var report = DevicePerformanceSuite.Run(device.Accelerator, "the CPU accelerator", DevicePrecision.Bf16,
            new PerformanceOptions(1, Quick: true, Large: false) { Rounds = 1 }, new DevicePerformanceSuiteTests.InlineProgress(steps),
            cases: DevicePerformanceSuiteTests.TinyCases with { ForwardBatch = 1, TrainBatch = 1 }, compareCores: true);
        output.WriteLine(report.ToTable());

        Assert.Equal("tiles", report.FullAttentionCore);
        Assert.Equal("fused", report.OtherFullAttentionCore);
        Assert.Equal(3, steps.Count);
        Assert.All(steps.Skip(1), step => Assert.EndsWith(", full attention also on the fused core", step));
        // The chosen core's cases as without the comparison, the mediator ratio against them.
        Assert.Equal(["forward full", "forward m4", "train step full", "train step m4"], report.Cases.Select(c => c.Name));
        Assert.True(report.MediatorTimeRatio256 > 0 && double.IsFinite(report.MediatorTimeRatio256));
        Assert.Equal(FullCases.Select(n => $"{n} fused"), report.OtherCoreCases.Select(c => c.Name));
        for (int i = 0; i < 2; i++)
        {
            var (chosen, other) = (report.Cases[2 * i], report.OtherCoreCases[i]);
            Assert.Equal((chosen.Tokens, chosen.Mediators, chosen.Batch, chosen.Training), (other.Tokens, other.Mediators, other.Batch, other.Training));
            Assert.True(double.IsFinite(other.MedianSeconds) && other.MedianSeconds > 0, $"{other.Name}: {other.MedianSeconds} s");
            double flops = 2 * FlopCounter.Count(DevicePerformanceSuiteTests.Tiny(0)).PerImage * other.Batch * (other.Training ? 3 : 1);
            Assert.Equal(flops / other.MedianSeconds / 1e9, other.Gflops, 9);
            Assert.Equal(other.Gflops / report.SgemmGflops, other.OfSgemm, 9);
            // One round each: the speedup is that round's time on the tiles over its time on the fused core.
            Assert.Equal(chosen.MedianSeconds / other.MedianSeconds, report.FusedSpeedups[chosen.Name], 12);
        }
        Assert.Equal(FullCases, report.FusedSpeedups.Keys);

        string table = report.ToTable();
        Assert.Contains("full attention's core as tiles (and as fused, compared); host ", table);
        Assert.Contains("full attention, fused core over the tiles (time with tiles / time fused, interleaved): forward full ", table);
        // Names longer than the column's 20 characters widen it for every row, so the columns line up.
        var all = report.Cases.Concat(report.OtherCoreCases).ToArray();
        Assert.Equal(21, all.Max(c => c.Name.Length)); // "train step full fused"
        Assert.Contains($"{"case",-21} {"tokens",6} {"batch",5} ", table);
        foreach (var c in all) Assert.Contains($"\n{c.Name,-21} {c.Tokens,6} {c.Batch,5} ", table);

        using var stream = new MemoryStream();
        report.WriteJson(stream);
        var root = JsonDocument.Parse(stream.ToArray()).RootElement;
        Assert.Equal("fused", root.GetProperty("other_full_attention_core").GetString());
        Assert.Equal(FullCases.Select(n => $"{n} fused"), root.GetProperty("other_core_cases").EnumerateArray().Select(c => c.GetProperty("name").GetString()));
        var speedups = root.GetProperty("fused_speedups");
        Assert.Equal(FullCases, speedups.EnumerateObject().Select(p => p.Name));
        foreach (string name in FullCases) Assert.Equal(report.FusedSpeedups[name], speedups.GetProperty(name).GetDouble());
    }

    [Fact]
    public void TheFusedSpeedup_IsTheTilesTimeOverTheFusedTime_WhicheverCoreWasChosen()
    {
        double[] tiles = [2, 4, 9], fused = [1, 1, 3];
        Assert.Equal(3, DevicePerformanceSuite.FusedSpeedup(FullAttentionCore.Tiles, tiles, fused)); // rounds 2, 4, 3
        Assert.Equal(3, DevicePerformanceSuite.FusedSpeedup(FullAttentionCore.Fused, fused, tiles));
        Assert.Equal(1.0 / 3, DevicePerformanceSuite.FusedSpeedup(FullAttentionCore.Tiles, fused, tiles), 12);
    }

    [Fact]
    public void AComparisonForAModelWhoseHeadsTheFusedCoreDoesNotTake_IsRefusedBeforeAnyWork()
    {
        var wide = new ModelConfig
        {
            InputSize = 8, PatchSize = 2, InChannels = 4, HiddenSize = 96, Depth = 1, NumHeads = 1, MlpRatio = 2.0, NumClasses = 10,
            LearnSigma = true, Attention = AttentionKind.Full,
        };
        var cases = DevicePerformanceSuiteTests.TinyCases with { Short = wide, ShortMediator = AttentionKinds.WithMediators(wide, 4) };
        var steps = new List<string>();
        var e = Assert.Throws<MediatorDiTException>(() => DevicePerformanceSuite.Run(device.Accelerator, "the CPU accelerator", DevicePrecision.Bf16,
            new PerformanceOptions(1, Quick: true), new DevicePerformanceSuiteTests.InlineProgress(steps), cases: cases, compareCores: true));
        Assert.Equal("the fused full-attention core takes heads even and at most 80 wide; this model's are 96 (hidden size 96 over 1 heads; use the tiles).", e.Message);
        Assert.Empty(steps);
    }
}
