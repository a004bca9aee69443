using MediatorDiT.Sampling;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Sampling;

public class NoiseSourceTests
{
    [Fact]
    public void ReplayHandsOutTheRecordedDrawsInOrder()
    {
        var draws = new Tensor([1, 2, 3, 4, 5, 6], 3, 2);
        var source = new ReplayNoiseSource(draws);
        source.Prepare([2], 3);
        var buffer = new float[2];
        foreach (var expected in new[] { new float[] { 1, 2 }, [3, 4], [5, 6] })
        {
            source.Next(buffer);
            Assert.Equal(expected, buffer);
        }
        Assert.Equal(3, source.Used);
        Assert.Contains("exhausted after 3 draws", Assert.Throws<MediatorDiTException>(() => source.Next(buffer)).Message);
    }

    [Fact]
    public void ReplayRefusesTheWrongShapeOrTooFewDraws()
    {
        var source = new ReplayNoiseSource(new Tensor(3, 2));
        Assert.Contains("draws of shape [2] but the sampler's state is [3]", Assert.Throws<MediatorDiTException>(() => source.Prepare([3], 1)).Message);
        Assert.Contains("3 draws left but the run needs 4", Assert.Throws<MediatorDiTException>(() => source.Prepare([2], 4)).Message);
        Assert.Contains("at least two dimensions", Assert.Throws<MediatorDiTException>(() => new ReplayNoiseSource(new Tensor(4))).Message);
    }

    [Fact]
    public void GaussianDrawsFollowTheRandomSource()
    {
        var source = new GaussianNoiseSource(42);
        var a = new float[5];
        source.Next(a);
        var expected = new float[5];
        new RandomSource(42).FillGaussian(expected);
        Assert.Equal(expected, a);
        Assert.Equal([2, 3], source.Draw(2, 3).Shape);
    }
}
