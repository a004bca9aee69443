using MediatorDiT.Diffusion;
using MediatorDiT.Models;
using MediatorDiT.Pipelines;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Pipelines;

/// <summary>The library pipeline on the tiny random ladder (1, 4, 16 mediators, 32 x 32 grey).</summary>
public class DiffusionPipelineTests
{
    private static readonly GenerationOptions Few = new() { NumImages = 5, Steps = 6, BatchSize = 1, Seed = 3, Schedule = new ScheduleChoice.Dynamic(First: 2) };

    [Fact]
    public void RanksTogetherMakeTheSingleRunsImages()
    {
        var pipeline = DiffusionPipeline.FromModels(LadderDemoTests.TinyLadder());
        var whole = pipeline.Generate(Few);
        var rank0 = pipeline.Generate(Few with { Rank = 0, WorldSize = 2 });
        var rank1 = pipeline.Generate(Few with { Rank = 1, WorldSize = 2 });
        Assert.Equal([0, 2, 4], rank0.Record.Images.Select(i => i.Index));
        Assert.Equal([1, 3], rank1.Record.Images.Select(i => i.Index));
        int per = 32 * 32;
        for (int i = 0; i < 5; i++)
        {
            var part = i % 2 == 0 ? rank0 : rank1;
            Assert.Equal(whole.Images.Span.Slice(i * per, per).ToArray(), part.Images.Span.Slice(i / 2 * per, per).ToArray());
            Assert.Equal(whole.Record.Images[i].FirstStepOfModel, part.Record.Images[i / 2].FirstStepOfModel);
        }
        Assert.Equal([0, 1, 2, 3, 4], whole.Record.Images.Select(i => i.Label));
    }

    [Fact]
    public void TheRecordCountsTheServingModelsFlops()
    {
        var models = LadderDemoTests.TinyLadder();
        var pipeline = DiffusionPipeline.FromModels(models);
        var result = pipeline.Generate(Few with { Schedule = new ScheduleChoice.Fixed([0.5, 0.5]) });
        // SDE with 6 time points: 5 grid steps and the last step; the largest model from step ceil(0.5 * 6) = 3.
        double[] flops = models.Select(m => FlopCounter.Count(m.Config).PerImage).ToArray();
        foreach (var image in result.Record.Images)
        {
            Assert.Equal([0, -1, 3], image.FirstStepOfModel);
            Assert.Equal((3 * flops[0] + 3 * flops[2]) / 1e9, image.Gflops, 9);
        }
        Assert.Equal(6 * flops[2] / 1e9, result.Record.LargestModelGflopsPerImage, 9);
        Assert.Equal(1 - 0.5 * (flops[0] + flops[2]) / flops[2], result.Record.FlopsSaving, 9);
        Assert.Equal("sde euler 6", result.Record.Sampler);
        Assert.Equal("fixed at 0.5,0.5 of the steps", result.Record.Schedule);
    }

    [Fact]
    public void ProgressIsReportedEveryStepAndCancellationStops()
    {
        var pipeline = DiffusionPipeline.FromModels(LadderDemoTests.TinyLadder());
        var reports = new List<GenerationProgress>();
        pipeline.Generate(Few with { NumImages = 2, BatchSize = 2 }, new Sync(reports.Add));
        Assert.Equal(Enumerable.Range(1, 6), reports.Select(r => r.Step));
        Assert.All(reports, r => Assert.Equal((0, 2, 2, 6), (r.ImagesDone, r.Images, r.BatchSize, r.StepCount)));

        using var cancel = new CancellationTokenSource();
        Assert.ThrowsAny<OperationCanceledException>(() =>
            pipeline.Generate(Few, new Sync(r => { if (r.Step == 2) cancel.Cancel(); }), cancel.Token));
    }

    [Fact]
    public void ProgressCarriesTheServingModelsAndPreviewsOnTheAskedSteps()
    {
        var pipeline = DiffusionPipeline.FromModels(LadderDemoTests.TinyLadder());
        var reports = new List<GenerationProgress>();
        var options = Few with { NumImages = 3, BatchSize = 2, PreviewEvery = 4, Schedule = new ScheduleChoice.Fixed([0.5, 0.5]) };
        var result = pipeline.Generate(options, new Sync(reports.Add));
        // Batches [0, 1] and [2]; the largest model (index 2) serves from step ceil(0.5 * 6) = 3 on, so step 3 is
        // the first report it appears in (reports count steps from 1).
        Assert.Equal(12, reports.Count);
        Assert.Equal([0, 1], reports[0].Indices);
        Assert.Equal([2], reports[6].Indices);
        Assert.Equal([0, 0, 0, 2, 2, 2], reports.Take(6).Select(r => r.ModelPerImage[1]));
        Assert.Equal([4, 6, 4, 6], reports.Where(r => r.Preview is not null).Select(r => r.Step));
        // The last step's preview is the batch's final image (a pixel model: no decoding).
        var last = reports[5].Preview!;
        Assert.Equal([2, 1, 32, 32], last.Shape);
        Assert.Equal(result.Images.Span[..last.Length].ToArray(), last.Span.ToArray());
        var quiet = new List<GenerationProgress>();
        pipeline.Generate(Few with { NumImages = 1 }, new Sync(quiet.Add));
        Assert.Equal(6, quiet.Count);
        Assert.All(quiet, r => Assert.Null(r.Preview));
    }

    [Fact]
    public void ALatentModelsPreviewsAreDecodedByTheVae()
    {
        // 4-channel 4 x 4 latents and the fixtures' small VAE (two blocks: 8 x 8 RGB images).
        var config = new ModelConfig
        {
            InputSize = 4, PatchSize = 2, InChannels = 4, HiddenSize = 32, Depth = 1, NumHeads = 2, NumClasses = 10,
            MediatorNum = 4, Attention = AttentionKind.Mediator, LearnSigma = false,
        };
        var model = new SiTModel(config);
        var rng = new RandomSource(7);
        foreach (var p in model.Parameters)
        {
            rng.FillGaussian(p.Value.Span);
            foreach (ref float v in p.Value.Span) v *= 0.05f;
        }
        var pipeline = DiffusionPipeline.FromModels([model], MediatorDiT.Models.Vae.VaePipeline.Load(Fixtures.PathOf("vae.weights.safetensors")));
        var reports = new List<GenerationProgress>();
        var result = pipeline.Generate(new GenerationOptions { NumImages = 1, Steps = 3, PreviewEvery = 2 }, new Sync(reports.Add));
        Assert.Equal([2, 3], reports.Where(r => r.Preview is not null).Select(r => r.Step));
        var last = reports[^1].Preview!;
        Assert.Equal([1, 3, 8, 8], last.Shape);
        Assert.Equal(result.Images.Span.ToArray(), last.Span.ToArray());
    }

    [Fact]
    public async Task RunsFromSeveralThreadsTakeTurnsAndGiveTheirOwnImages()
    {
        // The networks keep their scratch between calls: without turns, overlapping runs overwrite each other's.
        var pipeline = DiffusionPipeline.FromModels(LadderDemoTests.TinyLadder());
        var options = Enumerable.Range(0, 4).Select(i => Few with { NumImages = 3, BatchSize = 3, Seed = (ulong)(10 + i) }).ToArray();
        var alone = options.Select(o => pipeline.Generate(o).Images.Span.ToArray()).ToArray();
        using var start = new Barrier(options.Length);
        var together = options.Select(o => Task.Factory.StartNew(() =>
        {
            start.SignalAndWait();
            return pipeline.Generate(o).Images.Span.ToArray();
        }, TaskCreationOptions.LongRunning)).ToArray();
        var images = await Task.WhenAll(together);
        for (int i = 0; i < options.Length; i++) Assert.Equal(alone[i], images[i]);
    }

    [Fact]
    public void ARunStartedFromInsideAnotherRunsCallbackIsRefused()
    {
        var pipeline = DiffusionPipeline.FromModels(LadderDemoTests.TinyLadder());
        var error = Assert.Throws<MediatorDiTException>(() => pipeline.Run(Few with { NumImages = 1 }, _ => pipeline.Generate(Few with { NumImages = 1 })));
        Assert.StartsWith("a pipeline run cannot start from inside another run's batch or progress callback", error.Message);
        // The refused call left the pipeline usable.
        Assert.Single(pipeline.Generate(Few with { NumImages = 1 }).Record.Images);
    }

    [Fact]
    public void BadOptionsAreOneSentenceBeforeAnyWork()
    {
        var pipeline = DiffusionPipeline.FromModels(LadderDemoTests.TinyLadder());
        string Message(GenerationOptions o) => Assert.Throws<MediatorDiTException>(() => pipeline.Generate(o)).Message;
        Assert.Equal("the rank 2 must be in [0, world size 2).", Message(Few with { Rank = 2, WorldSize = 2 }));
        Assert.Contains("the schedule has 1 switch ratios but a ladder of 3 models needs 2", Message(Few with { Schedule = new ScheduleChoice.Dynamic([0.5]) }));
        Assert.Contains("applies to DiT checkpoints", Message(Few with { Sampler = SamplerKind.Ddim }));
        Assert.Contains("class label 11", Message(Few with { Labels = [11] }));
        Assert.Contains("model index 5 is outside the ladder of 3 models", Message(Few with { Schedule = new ScheduleChoice.Single(5) }));
        Assert.Equal("the preview interval must be 0 (none) or a positive step count, got -1.", Message(Few with { PreviewEvery = -1 }));
    }

    [Fact]
    public void TheDefaultRatioRuleIsTheAuthorsForThreeModelsAndNeverNegative()
    {
        Assert.Equal([0.9, 0.6], AdaptiveModelSchedule.DefaultRatios(3));
        Assert.Equal([0.9, 0.6, 0.3, 0.0, 0.0], AdaptiveModelSchedule.DefaultRatios(6));
        Assert.Empty(AdaptiveModelSchedule.DefaultRatios(1));
        var (schedule, text) = DiffusionPipeline.FromModels(LadderDemoTests.TinyLadder()).CreateSchedule(new GenerationOptions());
        Assert.Equal([0.9, 0.6], ((AdaptiveModelSchedule)schedule!).SwitchRatios);
        Assert.Equal("dynamic, ratios 0.9,0.6, first 3 (defaults)", text);
    }

    private sealed class Sync(Action<GenerationProgress> report) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value) => report(value);
    }
}
