using MediatorDiT.Evaluation;

namespace MediatorDiT.Tests.Evaluation;

/// <summary>The Inception-Score analogue and class agreement on predictions with known answers.</summary>
public class PredictionMetricTests
{
    [Fact]
    public void UniformPredictionsScoreOne()
    {
        var p = Enumerable.Repeat(0.1f, 50 * 10).ToArray();
        Assert.Equal(1.0, InceptionScore.Compute(p, 50, 10), 6);
    }

    [Fact]
    public void ConfidentPredictionsSpreadOverAllClassesScoreTheClassCount()
    {
        int n = 40, classes = 10;
        var p = new float[n * classes];
        for (int i = 0; i < n; i++) p[i * classes + i % classes] = 1;
        Assert.Equal(10.0, InceptionScore.Compute(p, n, classes), 9);
    }

    [Fact]
    public void ConfidentPredictionsOfOneClassScoreOne()
    {
        var p = new float[20 * 4];
        for (int i = 0; i < 20; i++) p[i * 4 + 2] = 1;
        Assert.Equal(1.0, InceptionScore.Compute(p, 20, 4), 12);
    }

    [Fact]
    public void TwoImagesByHand()
    {
        // p1 = (0.8, 0.2), p2 = (0.2, 0.8): marginal (0.5, 0.5); KL = 0.8 ln 1.6 + 0.2 ln 0.4 for each.
        float[] p = [0.8f, 0.2f, 0.2f, 0.8f];
        double hi = 0.8f, lo = 0.2f, mean = (hi + lo) / 2;
        double kl = hi * Math.Log(hi / mean) + lo * Math.Log(lo / mean);
        Assert.Equal(Math.Exp(kl), InceptionScore.Compute(p, 2, 2), 6);
    }

    [Fact]
    public void ClassAgreementCountsArgmaxEqualToTheLabel()
    {
        float[] p =
        [
            0.7f, 0.2f, 0.1f, // 0
            0.1f, 0.1f, 0.8f, // 2
            0.4f, 0.4f, 0.2f, // tie: first, 0
            0.2f, 0.5f, 0.3f, // 1
        ];
        Assert.Equal(0.75, ClassAgreement.Compute(p, 3, [0, 2, 1, 1]));
        Assert.Equal(0.5, ClassAgreement.Compute(p, 3, [0, 1, 0, 2]));
        Assert.Throws<MediatorDiTException>(() => ClassAgreement.Compute(p, 3, [0, 1]));
    }
}
