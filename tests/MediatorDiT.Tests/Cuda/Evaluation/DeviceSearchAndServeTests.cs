using MediatorDiT.Cuda.Sampling;
using MediatorDiT.Evaluation;
using MediatorDiT.Pipelines;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;
using MediatorDiT.Tests.Cuda.Kernels;
using MediatorDiT.Tests.Cuda.Sampling;

namespace MediatorDiT.Tests.Cuda.Evaluation;

/// <summary>
/// The library paths of `mdit search-thresholds` and `mdit serve` with their networks on the device: a
/// <see cref="DiffusionPipeline"/> on a cuda context whose <see cref="DeviceModelFactory"/> runs on ILGPU's CPU
/// accelerator, against the CPU pipeline on the same 2-model mediator ladder, seeds and labels, within the device
/// sampling tests' bound (<see cref="TinyDeviceModels.Tolerance"/> of max(1, max |image|)).
/// </summary>
[Collection(CpuAcceleratorCollection.Name)]
public class DeviceSearchAndServeTests(AcceleratorFixture device)
{
    private static GenerationOptions Sde(float guidance) => new() { Sampler = SamplerKind.Sde, Steps = 8, GuidanceScale = guidance, Decode = false };

    [Theory]
    [InlineData(1f)]
    [InlineData(4f)]
    public void TheThresholdSweepOnTheDevice_GivesTheCpuSweep(float guidance)
    {
        var generation = Sde(guidance);
        var options = new ThresholdSearchOptions { Samples = 3, BatchSize = 3, Seed = 5, ReferenceSteps = 2 };
        var cpu = DiffusionPipeline.FromModels(TinyDeviceModels.Ladder());
        var expected = Sweep(cpu, generation, options);

        using var factory = new DeviceModelFactory(device.Accelerator);
        var onDevice = DiffusionPipeline.FromModels(TinyDeviceModels.Ladder(), compute: TinyDeviceModels.OnCuda, deviceModels: factory);
        var actual = Sweep(onDevice, generation, options);

        // The same schedules: every pair switched at the same steps, so the same cost and the same sharing of calls.
        Assert.Equal(expected.Runs.Count, actual.Runs.Count);
        Assert.Equal(expected.NetworkCalls, actual.NetworkCalls);
        Assert.Equal(expected.RequestedCalls, actual.RequestedCalls);
        Assert.Equal(expected.LargestModelGflopsPerImage, actual.LargestModelGflopsPerImage);
        Assert.True(expected.Runs.Select(r => r.GflopsPerImage).Distinct().Count() > 1, "the grid should give schedules of different cost on this ladder");
        TinyDeviceModels.AssertClose(expected.LargestModelSamples, actual.LargestModelSamples);
        for (int i = 0; i < expected.Runs.Count; i++)
        {
            Assert.Equal(expected.Runs[i].Pair.Index, actual.Runs[i].Pair.Index);
            Assert.Equal(expected.Runs[i].GflopsPerImage, actual.Runs[i].GflopsPerImage);
            Assert.Equal(expected.Runs[i].MeanSwitchStep, actual.Runs[i].MeanSwitchStep);
            TinyDeviceModels.AssertClose(expected.Runs[i].Samples, actual.Runs[i].Samples);
        }

        // The proxy: a mean of per-image rms distances between two runs, each within the bound, so within twice it.
        var cpuScores = ThresholdSearch.Score(expected, SampleScorers.ReferenceDistance);
        var deviceScores = ThresholdSearch.Score(actual, SampleScorers.ReferenceDistance);
        double scale = Math.Max(1, expected.Runs.Max(r => r.Samples.Span.ToArray().Max(MathF.Abs)));
        for (int i = 0; i < cpuScores.Pairs.Count; i++)
            Assert.True(Math.Abs(cpuScores.Pairs[i].Score - deviceScores.Pairs[i].Score) <= 2 * TinyDeviceModels.Tolerance * scale,
                $"pair {cpuScores.Pairs[i].Pair}: cpu {cpuScores.Pairs[i].Score}, device {deviceScores.Pairs[i].Score}");
    }

    private static SweepRuns Sweep(DiffusionPipeline pipeline, GenerationOptions generation, ThresholdSearchOptions options)
    {
        var search = new ThresholdSearch(pipeline.LadderFor(generation), pipeline.CreateSampler(generation), options);
        return search.Sweep(search.Grid, options.Samples);
    }

    [Fact]
    public void AServedJobOnTheDevice_RunsOnTheWorkerThreadAndGivesTheCpuImagesAndPreviews()
    {
        // As `mdit serve`: the pipeline warmed up on the thread that opened the device, the job run on another thread,
        // previews every step.
        var job = Sde(3f) with { NumImages = 2, BatchSize = 2, Seed = 9, PreviewEvery = 2, Schedule = new ScheduleChoice.Fixed([0.5]) };
        var (expected, expectedPreviews) = Run(DiffusionPipeline.FromModels(TinyDeviceModels.Ladder()), job);

        using var factory = new DeviceModelFactory(device.Accelerator);
        var pipeline = DiffusionPipeline.FromModels(TinyDeviceModels.Ladder(), compute: TinyDeviceModels.OnCuda, deviceModels: factory);
        pipeline.WarmUp();
        (GenerationResult, List<Tensor>)? result = null;
        var worker = new Thread(() => result = Run(pipeline, job)) { Name = "device job" };
        worker.Start();
        worker.Join();
        var (actual, actualPreviews) = result!.Value;

        Assert.Equal(expected.Record.Images.Select(i => i.FirstStepOfModel.ToArray()), actual.Record.Images.Select(i => i.FirstStepOfModel.ToArray()));
        TinyDeviceModels.AssertClose(expected.Samples, actual.Samples);
        Assert.Equal(expectedPreviews.Count, actualPreviews.Count);
        Assert.True(actualPreviews.Count >= 4, $"{actualPreviews.Count} previews");
        for (int i = 0; i < expectedPreviews.Count; i++) TinyDeviceModels.AssertClose(expectedPreviews[i], actualPreviews[i]);
    }

    private static (GenerationResult Result, List<Tensor> Previews) Run(DiffusionPipeline pipeline, GenerationOptions options)
    {
        var previews = new List<Tensor>();
        var progress = new SyncProgress<GenerationProgress>(p =>
        {
            if (p.Preview is { } preview) previews.Add(preview);
        });
        return (pipeline.Generate(options, progress), previews);
    }
}
