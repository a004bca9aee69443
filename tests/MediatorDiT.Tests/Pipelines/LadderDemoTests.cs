using System.Text.Json;
using MediatorDiT.Data;
using MediatorDiT.Evaluation;
using MediatorDiT.IO;
using MediatorDiT.Models;
using MediatorDiT.Pipelines;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;
using MediatorDiT.Tests.Evaluation;
using MediatorDiT.Tests.IO;

namespace MediatorDiT.Tests.Pipelines;

/// <summary>
/// The demo on a fixture-sized random ladder (32 x 32 grey, patch 4, hidden 32, one block, mediators
/// 1, 4, 16): the picture's layout and labels, FLOPs that are the FLOP counter's per-model counts times
/// the logged usage, shared noise, class agreement.
/// </summary>
public class LadderDemoTests
{
    internal static SiTModel TinyModel(int mediators, ulong seed)
    {
        var config = new ModelConfig
        {
            InputSize = 32, PatchSize = 4, InChannels = 1, HiddenSize = 32, Depth = 1, NumHeads = 2, NumClasses = 10,
            MediatorNum = mediators, Attention = AttentionKind.Mediator, LearnSigma = false,
        };
        var model = new SiTModel(config);
        // Random weights everywhere (the official init zeroes the output layer, which would make every model equal).
        var rng = new RandomSource(seed);
        foreach (var p in model.Parameters)
        {
            rng.FillGaussian(p.Value.Span);
            System.Numerics.Tensors.TensorPrimitives.Multiply(p.Value.Span, 0.05f, p.Value.Span);
        }
        return model;
    }

    internal static SiTModel[] TinyLadder() => [TinyModel(1, 1), TinyModel(4, 2), TinyModel(16, 3)];

    private static readonly LadderDemoOptions Options = new() { PerClass = 2, Steps = 8, First = 2, Seed = 5 };

    [Fact]
    public void WritesALabelledPictureAndARecordWhoseFlopsAreTheCountersTimesTheUsage()
    {
        var models = TinyLadder();
        var result = LadderDemo.Run(DiffusionPipeline.FromModels(models), SyntheticDigits.Classifier(1), Options);
        using var dir = new TempDirectory();
        string[] names = ["m1", "m4", "m16"];
        var (picturePath, recordPath) = LadderDemoReport.Write(dir.Path, result, ["a", "b", "c"], names, DatasetClassNames.FashionMnist, scale: 2);

        // Layout: label strip as wide as the widest name ("T-shirt/top", 11 glyphs of 6 font pixels less one, x 2) plus
        // two 6-pixel margins; a title strip of one 16-pixel line plus margins; two blocks of 2 x 10 cells of 64 + 2 px, 12 px apart.
        int label = (11 * 6 - 1) * 2 + 12, title = 16 + 12, block = 2 * 66 + 2;
        var picture = PngDecoder.Read(picturePath);
        Assert.Equal((label + 2 * block + 12, title + 10 * 66 + 2), (picture.Width, picture.Height));
        Assert.Equal(1, picture.Channels);
        var strips = new List<string>();
        for (int row = 0; row < 10; row++)
        {
            int top = title + 2 + row * 66;
            var strip = Enumerable.Range(top, 64).SelectMany(y => Enumerable.Range(0, label).Select(x => picture.At(x, y, 0))).ToArray();
            Assert.True(strip.Count(b => b == 255) > 20, $"row {row} has no label");
            strips.Add(Convert.ToHexString(strip));
        }
        Assert.Equal(10, strips.Distinct().Count());
        // The first image of the dynamic block is the first sample, upscaled 2x.
        var first = ImageConversion.ToImage(result.Dynamic.Samples, 0);
        for (int y = 0; y < 64; y += 7)
            for (int x = 0; x < 64; x += 5)
                Assert.Equal(first.At(x / 2, y / 2, 0), picture.At(label + 2 + x, title + 2 + y, 0));

        using var doc = JsonDocument.Parse(File.ReadAllText(recordPath));
        var root = doc.RootElement;
        double[] perModel = models.Select(m => FlopCounter.Count(m.Config).PerImage).ToArray();
        Assert.Equal(perModel, root.GetProperty("flops_per_image_per_evaluation").EnumerateArray().Select(e => e.GetDouble()).ToArray());
        foreach (var run in new[] { "dynamic", "largest" })
        {
            var r = root.GetProperty(run);
            int[] used = r.GetProperty("model_per_step").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            Assert.Equal(8, used.Length); // 7 Euler steps and the mean last step, one evaluation each
            Assert.Equal(used.Length, r.GetProperty("evaluations").GetInt32());
            double expected = used.Sum(m => perModel[m]);
            Assert.Equal(expected, r.GetProperty("flops_per_image").GetDouble(), expected * 1e-12);
            Assert.Equal(expected / 1e9, r.GetProperty("gflops_per_image").GetDouble(), expected * 1e-21);
            double agreement = r.GetProperty("class_agreement").GetDouble();
            Assert.InRange(agreement, 0, 1);
            if (run == "largest") Assert.All(used, m => Assert.Equal(2, m));
            else
            {
                Assert.Equal(0, used[0]);
                Assert.True(used.Zip(used.Skip(1)).All(p => p.First <= p.Second), "the schedule never moves back");
                int[] switches = root.GetProperty("switch_steps").EnumerateArray().Select(e => e.GetInt32()).ToArray();
                Assert.Equal(Enumerable.Range(0, 3).Select(m => Array.IndexOf(used, m)).ToArray(), switches);
            }
        }
        double saving = 1 - root.GetProperty("dynamic").GetProperty("flops_per_image").GetDouble() / root.GetProperty("largest").GetProperty("flops_per_image").GetDouble();
        Assert.Equal(100 * saving, root.GetProperty("flops_saving_percent").GetDouble(), 1e-9);

        // Class agreement: the fraction of samples whose most probable class is the requested row's class.
        var outputs = new SampleEvaluator(SyntheticDigits.Classifier(1)).Extract(result.Largest.Samples);
        int agree = 0;
        for (int i = 0; i < 20; i++)
        {
            var probs = outputs.Probabilities.AsSpan(i * 10, 10);
            int best = 0;
            for (int c = 1; c < 10; c++) if (probs[c] > probs[best]) best = c;
            if (best == i / 2) agree++;
        }
        Assert.Equal(agree / 20.0, result.Largest.ClassAgreement, 12);
        Assert.Equal(Enumerable.Range(0, 20).Select(i => i / 2).ToArray(), result.Labels);
    }

    [Fact]
    public void BothRunsShareTheirNoise()
    {
        // Ratios 0, 0 never leave the first model: the dynamic run is then the first model alone on the same noise,
        // and the largest model's run is what the pipeline gives for it alone (in one batch of 20, as the demo runs:
        // the products' blocking, and so their rounding, depends on the batch).
        var pipeline = DiffusionPipeline.FromModels(TinyLadder());
        var result = LadderDemo.Run(pipeline, SyntheticDigits.Classifier(1), Options with { Ratios = [0, 0] });
        var generation = new GenerationOptions { Labels = result.Labels, NumImages = 20, BatchSize = 20, Steps = Options.Steps, Seed = Options.Seed };
        var first = pipeline.Generate(generation with { Schedule = new ScheduleChoice.Single(0) }).Images;
        var largest = pipeline.Generate(generation with { Schedule = new ScheduleChoice.Single(-1) }).Images;
        Assert.Equal(first.Span.ToArray(), result.Dynamic.Samples.Span.ToArray());
        Assert.Equal(largest.Span.ToArray(), result.Largest.Samples.Span.ToArray());
        Assert.NotEqual(first.Span.ToArray(), largest.Span.ToArray());
        Assert.Equal([0, -1, -1], result.SwitchSteps);
    }

    [Fact]
    public void BadOptionsAndMismatchedClassifiersAreClearErrors()
    {
        var ladder = DiffusionPipeline.FromModels(TinyLadder());
        var e = Assert.Throws<MediatorDiTException>(() => LadderDemo.Run(ladder, SyntheticDigits.Classifier(1), Options with { PerClass = 0 }));
        Assert.Contains("--per-class", e.Message);
        e = Assert.Throws<MediatorDiTException>(() => LadderDemo.Run(ladder, SyntheticDigits.Classifier(1), Options with { Ratios = [0.5] }));
        Assert.Contains("3 models needs 2", e.Message);
        var three = new ImageClassifier(new ClassifierConfig { Widths = [4], Hidden = 4, NumClasses = 3 });
        e = Assert.Throws<MediatorDiTException>(() => LadderDemo.Run(ladder, three, Options));
        Assert.Contains("3 classes", e.Message);
    }
}
