using MediatorDiT.Evaluation;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Evaluation;

/// <summary>The threshold search's FID scorer is SampleEvaluator's FID.</summary>
public class FidScorerTests
{
    private static Tensor RandomImages(int n, ulong seed, float shift = 0)
    {
        var t = Tensor.FromArray(TestData.Gaussian(n * 1024, seed, 0.6f), n, 1, 32, 32);
        for (int i = 0; i < t.Length; i++) t.Data[i] = Math.Clamp(t.Data[i] + shift, -1f, 1f);
        return t;
    }

    [Fact]
    public void ScoreEqualsTheEvaluatorsFidForTheSameImages()
    {
        var evaluator = new SampleEvaluator(SyntheticDigits.Classifier(3));
        var reference = evaluator.Reference("r", RandomImages(40, 11));
        var scorer = new FidScorer(evaluator, reference);
        Assert.Equal("fid", scorer.Name);
        foreach (var (images, what) in new[] { (RandomImages(12, 12), "similar"), (RandomImages(12, 13, 0.5f), "shifted") })
        {
            double expected = evaluator.Evaluate(images, null, reference).Fid;
            double score = scorer.Score(images, new int[12], CancellationToken.None);
            Assert.True(Math.Abs(score - expected) <= 1e-9 * Math.Max(1, Math.Abs(expected)), $"{what}: {score} vs {expected}");
        }
        Assert.True(scorer.Score(RandomImages(12, 13, 0.5f), new int[12], default) > scorer.Score(RandomImages(12, 12), new int[12], default));
    }

    [Fact]
    public void AReferenceOfAnotherClassifierOrOneImageIsAClearError()
    {
        var evaluator = new SampleEvaluator(SyntheticDigits.Classifier(3));
        var other = new SampleEvaluator(SyntheticDigits.Classifier(4));
        var e = Assert.Throws<MediatorDiTException>(() => new FidScorer(evaluator, other.Reference("r", RandomImages(10, 1))));
        Assert.Contains("another classifier", e.Message);
        var scorer = new FidScorer(evaluator, evaluator.Reference("r", RandomImages(10, 1)));
        e = Assert.Throws<MediatorDiTException>(() => scorer.Score(RandomImages(1, 2), [0], default));
        Assert.Contains("at least 2 images", e.Message);
    }
}
