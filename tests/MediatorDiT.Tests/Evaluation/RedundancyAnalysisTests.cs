using MediatorDiT.Diffusion;
using MediatorDiT.Evaluation;
using MediatorDiT.Models;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Evaluation;

/// <summary>The measurement during sampling: which model, which rows and which step each value comes from.</summary>
public class RedundancyAnalysisTests
{
    private static SiTModel RandomModel(int mediators, ulong seed)
    {
        var model = new SiTModel(new ModelConfig
        {
            InputSize = 8, PatchSize = 2, InChannels = 4, HiddenSize = 32, Depth = 2, NumHeads = 2, NumClasses = 5, MediatorNum = mediators,
        });
        var rng = new RandomSource(seed);
        foreach (var p in model.Parameters.Where(p => p.Trainable)) rng.FillGaussian(p.Value.Span, 0, 0.2f);
        return model;
    }

    [Fact]
    public void OneMediatorMakesEveryQueryReadTheSameDistribution()
    {
        // With one mediator the queries-to-mediators softmax is 1 everywhere, so all rows of the composed map
        // equal the mediator's row and S is 0.
        var model = RandomModel(1, 3);
        var input = new Tensor(16, 32);
        new RandomSource(4).FillGaussian(input.Span);
        var values = LayerRedundancy.PerImage((IAttentionMaps)model.Blocks[0].Attention, input, 1, 16);
        Assert.Equal(0.0, values[0], 12);
    }

    [Fact]
    public void AGuidedLadderIsMeasuredOnTheConditionalRowsOfTheServingModel()
    {
        var models = new[] { RandomModel(4, 1), RandomModel(16, 2) };
        var sampler = new SdeSampler(new Transport(), new SdeSamplerOptions { NumSteps = 4 });
        var reports = new List<RedundancyProgress>();
        var points = RedundancyAnalysis.Measure(models, new ClassifierFreeGuidance(2f, 3), new FixedModelSchedule(0.5), sampler,
            new RandomSource(5), new RedundancyOptions { Samples = 3, BatchSize = 3 }, new ListProgress<RedundancyProgress>(reports),
            noise: new GaussianNoiseSource(77));

        // 3 grid steps and the last step, 2 layers, every value averaged over the 3 samples.
        Assert.Equal(8, points.Count);
        Assert.Equal([0, 1, 2, 3], points.Select(p => p.Step).Distinct());
        Assert.All(points, p => Assert.Equal(3, p.Samples));
        Assert.Equal(4, reports.Count);

        // Step 0: the initial noise z (drawn first from the given generator) at t0 in the first model, with
        // the samples' own labels (the conditional half); measured here with a plain forward of z alone.
        var z = new Tensor(3, 4, 8, 8);
        new RandomSource(5).FillGaussian(z.Span);
        Tensor? layer0 = null;
        using (AttentionObserver.Attach(models[0], (layer, input, batch) => { if (layer == 0) layer0 = input.Clone(); }))
            models[0].Forward(z, [(float)sampler.T0, (float)sampler.T0, (float)sampler.T0], [0, 1, 2]);
        var maps = (IAttentionMaps)models[0].Blocks[0].Attention;
        double expected = Enumerable.Range(0, 3).Average(b =>
        {
            var image = maps.ComputeAttentionProbabilities(new Tensor(layer0!.Span.Slice(b * 16 * 32, 16 * 32).ToArray(), 16, 32));
            return (AttentionRedundancy.ReferenceMeanPairwiseJensenShannon(image.Span[..256], 16, 16)
                    + AttentionRedundancy.ReferenceMeanPairwiseJensenShannon(image.Span[256..512], 16, 16)) / 2;
        });
        var measured = points.Single(p => p.Layer == 0 && p.Step == 0);
        Assert.Equal(sampler.T0, measured.T, 6);
        Assert.True(Math.Abs(measured.S - expected) <= 1e-5 * expected, $"{measured.S:R} vs {expected:R}");
    }

    private sealed class ListProgress<T>(List<T> list) : IProgress<T>
    {
        public void Report(T value) => list.Add(value);
    }
}
