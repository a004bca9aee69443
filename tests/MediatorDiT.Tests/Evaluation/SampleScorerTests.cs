using MediatorDiT.Evaluation;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Evaluation;

public class SampleScorerTests
{
    [Fact]
    public void ReferenceDistanceIsTheMeanPerImageRms()
    {
        var reference = new Tensor([0, 0, 0, 0, 1, 1, 1, 1], 2, 1, 2, 2);
        var images = new Tensor([1, 1, 1, 1, 1, 3, 1, 3], 2, 1, 2, 2);
        // Image 0 differs by 1 everywhere (RMS 1); image 1 by (0, 2, 0, 2) (RMS sqrt(2)).
        double score = new ReferenceDistanceScorer(reference).Score(images, [0, 1], default);
        Assert.Equal((1 + Math.Sqrt(2)) / 2, score, 12);
        Assert.Equal(0, new ReferenceDistanceScorer(reference).Score(reference, [0, 1], default));
        var e = Assert.Throws<MediatorDiTException>(() => new ReferenceDistanceScorer(reference).Score(new Tensor(3, 1, 2, 2), [0, 1, 2], default));
        Assert.Contains("same seed set", e.Message);
    }

    [Fact]
    public void FrechetDistanceOfOneFeatureIsMeanAndStdGap()
    {
        // 1x1 single-channel images: the feature is the pixel. Reference (0, 2): mean 1, variance 2;
        // images (1, 5): mean 3, variance 8. FD = (3 - 1)^2 + (sqrt 8 - sqrt 2)^2 = 4 + 2.
        var reference = new Tensor([0, 2], 2, 1, 1, 1);
        var images = new Tensor([1, 5], 2, 1, 1, 1);
        var scorer = new PooledFrechetScorer(reference, pool: 1);
        Assert.Equal(6, scorer.Score(images, [0, 0], default), 9);
        Assert.Equal(0, scorer.Score(reference, [0, 0], default), 9);
        Assert.Equal("frechet-pool1", scorer.Name);
    }

    [Fact]
    public void FrechetDistanceOfIndependentFeaturesAddsUp()
    {
        // Two channels varying independently (zero sample covariance between them): the distance is the
        // sum of the one-feature distances. Channel 0: (0, 2, 0, 2) vs (1, 1, 3, 3) (means 1 / 2, variances 4/3 both);
        // channel 1: (0, 0, 4, 4) vs (1, 2, 1, 2): means 2 / 1.5, variances 16/3 / 1/3.
        var reference = new Tensor([0, 0, 2, 0, 0, 4, 2, 4], 4, 2, 1, 1);
        var images = new Tensor([1, 1, 1, 2, 3, 1, 3, 2], 4, 2, 1, 1);
        double ch0 = 1 + 0.0;
        double ch1 = 0.25 + Math.Pow(Math.Sqrt(16.0 / 3) - Math.Sqrt(1.0 / 3), 2);
        Assert.Equal(ch0 + ch1, new PooledFrechetScorer(reference, pool: 1).Score(images, [0, 0, 0, 0], default), 9);
    }

    [Fact]
    public void PoolingAveragesEachCell()
    {
        // 2x2 images pooled to 1x1: the feature is the image mean, so two images with the same means score 0.
        var reference = new Tensor([0, 4, 0, 0, 2, 2, 2, 2], 2, 1, 2, 2);
        var images = new Tensor([1, 1, 1, 1, 8, 0, 0, 0], 2, 1, 2, 2);
        Assert.Equal(0, new PooledFrechetScorer(reference, pool: 1).Score(images, [0, 0], default), 9);
        Assert.Contains("cannot be pooled", Assert.Throws<MediatorDiTException>(() => new PooledFrechetScorer(reference, pool: 3)).Message);
    }

    [Fact]
    public void JacobiEigenvaluesOfATridiagonalMatrix()
    {
        double[] a = [2, -1, 0, -1, 2, -1, 0, -1, 2];
        var (w, v) = SymmetricEigen.Decompose(a, 3);
        var sorted = w.Order().ToArray();
        Assert.Equal(2 - Math.Sqrt(2), sorted[0], 12);
        Assert.Equal(2, sorted[1], 12);
        Assert.Equal(2 + Math.Sqrt(2), sorted[2], 12);
        // A = V diag(w) V^T.
        for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
        {
            double sum = 0;
            for (int k = 0; k < 3; k++) sum += v[i * 3 + k] * w[k] * v[j * 3 + k];
            Assert.Equal(a[i * 3 + j], sum, 12);
        }
    }
}
