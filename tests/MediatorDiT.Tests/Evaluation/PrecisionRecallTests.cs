using MediatorDiT.Evaluation;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Evaluation;

/// <summary>k-NN manifolds, precision and recall on constructed point sets with known answers.</summary>
public class PrecisionRecallTests
{
    /// <summary>Points t along a fixed direction in 5-D, shifted by an offset (distances are |t_i - t_j|).</summary>
    private static float[] OnALine(params float[] t)
    {
        float[] direction = [0.6f, 0f, 0.8f, 0f, 0f]; // unit length
        float[] offset = [3f, -1f, 2f, 0.5f, 7f];
        var points = new float[t.Length * 5];
        for (int i = 0; i < t.Length; i++)
            for (int d = 0; d < 5; d++) points[i * 5 + d] = offset[d] + t[i] * direction[d];
        return points;
    }

    [Fact]
    public void RadiiAreTheDistanceToTheKthNearestOtherPoint()
    {
        // 0..4 with k = 3: the end points reach 3, the others 2.
        var m = KnnManifold.Build(OnALine(0, 1, 2, 3, 4), 5, 5, k: 3);
        float[] expected = [9, 4, 4, 4, 9];
        for (int i = 0; i < 5; i++) Assert.True(Math.Abs(m.RadiiSquared[i] - expected[i]) < 1e-4, $"radius^2[{i}] = {m.RadiiSquared[i]}");
    }

    [Fact]
    public void PrecisionAndRecallOfConstructedSets()
    {
        // Real {0, 1, 2, 3}, k = 1: radius 1 each. Generated {0.5, 0.9, 10, 10.5}, k = 1: radii 0.4, 0.4, 0.5, 0.5.
        // Precision: 0.5 and 0.9 lie within 1 of a real point, 10 and 10.5 do not: 2/4.
        // Recall: only 1 lies within 0.4 of 0.9 (0 is 0.5 from 0.5, 2 is 1.1 from 0.9): 1/4.
        var real = KnnManifold.Build(OnALine(0, 1, 2, 3), 4, 5, k: 1);
        var generated = KnnManifold.Build(OnALine(0.5f, 0.9f, 10, 10.5f), 4, 5, k: 1);
        var (precision, recall) = PrecisionRecall.Compute(real, generated);
        Assert.Equal(0.5, precision);
        Assert.Equal(0.25, recall);
        Assert.Equal([true, true, false, false], real.Contains(generated.Points, 4));
    }

    [Fact]
    public void ASetAgainstItselfHasFullPrecisionAndRecall()
    {
        var points = TestData.Gaussian(300 * 8, 5);
        var a = KnnManifold.Build(points, 300, 8);
        var b = KnnManifold.Build((float[])points.Clone(), 300, 8);
        Assert.Equal((1.0, 1.0), PrecisionRecall.Compute(a, b));
    }

    [Fact]
    public void BlockedNeighbourSearchMatchesBruteForce()
    {
        // More than one block of 1024 points, with duplicates (a radius of zero is allowed).
        int n = 1500, d = 4, k = 3;
        var points = TestData.Gaussian(n * d, 8);
        points.AsSpan(0, d).CopyTo(points.AsSpan(1400 * d, d));
        var m = KnnManifold.Build(points, n, d, k);
        for (int i = 0; i < n; i += 37)
        {
            var dist = new List<double>();
            for (int j = 0; j < n; j++)
            {
                if (j == i) continue;
                double s = 0;
                for (int c = 0; c < d; c++) s += Math.Pow(points[i * d + c] - points[j * d + c], 2);
                dist.Add(s);
            }
            dist.Sort();
            Assert.True(Math.Abs(m.RadiiSquared[i] - dist[k - 1]) <= 1e-4 * Math.Max(1, dist[k - 1]), $"point {i}: {m.RadiiSquared[i]} vs {dist[k - 1]}");
        }
    }

    [Fact]
    public void ThinningKeepsEvenlySpacedRows()
    {
        float[] features = Enumerable.Range(0, 10).Select(i => (float)i).ToArray(); // 10 rows of 1
        var (points, count) = PrecisionRecall.Thin(features, 10, 1, 4);
        Assert.Equal(4, count);
        Assert.Equal([0f, 2f, 5f, 7f], points);
        Assert.Same(features, PrecisionRecall.Thin(features, 10, 1, 10).Points);
    }

    [Fact]
    public void TooFewPointsForKAreRejected()
    {
        var e = Assert.Throws<MediatorDiTException>(() => KnnManifold.Build(new float[6], 3, 2, k: 3));
        Assert.Contains("k = 3", e.Message);
    }
}
