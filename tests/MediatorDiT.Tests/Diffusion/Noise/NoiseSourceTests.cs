using MediatorDiT.Diffusion;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Diffusion.Noise;

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
        Assert.Contains("all 3 draws of recorded noise are used up", Assert.Throws<MediatorDiTException>(() => source.Next(buffer)).Message);
    }

    [Fact]
    public void ReplayRefusesTheWrongShapeOrTooFewDraws()
    {
        var source = new ReplayNoiseSource(new Tensor(3, 2));
        Assert.Contains("draws of shape [2] but the sampler's state is [3]", Assert.Throws<MediatorDiTException>(() => source.Prepare([3], 1)).Message);
        Assert.Contains("3 draws left but the run needs 4", Assert.Throws<MediatorDiTException>(() => source.Prepare([2], 4)).Message);
        Assert.Contains("(N, ...) with N >= 1 draws was expected", Assert.Throws<MediatorDiTException>(() => new ReplayNoiseSource(new Tensor(4))).Message);
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

    /// <summary>Sample i's z and draws depend on (seed, i) only: one batch of 5 equals batches of 2 and 3, guided or not.</summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void IndexedDrawsDoNotDependOnTheBatching(int rowsPerSample)
    {
        const int per = 6, steps = 3;
        (float[] Z, float[][] Draws) Run(int[] indices)
        {
            var source = new IndexedNoiseSource(11, indices);
            var z = source.InitialNoise([per]);
            source.Prepare([rowsPerSample * indices.Length, per], steps);
            var draws = new float[steps][];
            for (int k = 0; k < steps; k++)
            {
                draws[k] = new float[rowsPerSample * indices.Length * per];
                source.Next(draws[k]);
            }
            return (z.Span.ToArray(), draws);
        }
        var whole = Run([0, 1, 2, 3, 4]);
        var a = Run([0, 1]);
        var b = Run([2, 3, 4]);
        Assert.Equal(whole.Z, a.Z.Concat(b.Z).ToArray());
        for (int k = 0; k < steps; k++)
            for (int copy = 0; copy < rowsPerSample; copy++)
            {
                // Copy c of sample s is row c * B + s of a draw.
                float[] Rows(float[] draw, int samples, int first, int count) => draw.AsSpan((copy * samples + first) * per, count * per).ToArray();
                Assert.Equal(Rows(whole.Draws[k], 5, 0, 2), Rows(a.Draws[k], 2, 0, 2));
                Assert.Equal(Rows(whole.Draws[k], 5, 2, 3), Rows(b.Draws[k], 3, 0, 3));
            }
        // Another seed, or another index, gives other values.
        Assert.NotEqual(whole.Z[..per], new IndexedNoiseSource(12, [0]).InitialNoise([per]).Span.ToArray());
        Assert.NotEqual(whole.Z[..per], whole.Z[per..(2 * per)]);
    }

    [Fact]
    public void NoNoiseRefusesARunThatDraws()
    {
        NoNoiseSource.Instance.Prepare([2, 3], 0);
        Assert.Contains("its sampler takes 4", Assert.Throws<MediatorDiTException>(() => NoNoiseSource.Instance.Prepare([2, 3], 4)).Message);
    }
}
