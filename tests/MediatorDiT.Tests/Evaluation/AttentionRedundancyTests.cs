using MediatorDiT.Evaluation;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Evaluation;

/// <summary>The pairwise Jensen-Shannon redundancy on hand-made maps with known values, and tiled against plain.</summary>
public class AttentionRedundancyTests
{
    /// <summary>rows x cols random distributions (softmax of Gaussian logits, computed here in float64).</summary>
    private static float[] RandomRows(int rows, int cols, ulong seed, double spread = 2.0)
    {
        var logits = TestData.Gaussian(rows * cols, seed);
        var map = new float[rows * cols];
        for (int r = 0; r < rows; r++)
        {
            double sum = 0;
            for (int k = 0; k < cols; k++) sum += Math.Exp(spread * logits[r * cols + k]);
            for (int k = 0; k < cols; k++) map[r * cols + k] = (float)(Math.Exp(spread * logits[r * cols + k]) / sum);
        }
        return map;
    }

    [Fact]
    public void IdenticalRowsHaveNoDivergence()
    {
        var row = RandomRows(1, 23, 5);
        var map = Enumerable.Range(0, 9).SelectMany(_ => row).ToArray();
        Assert.Equal(0.0, AttentionRedundancy.MeanPairwiseJensenShannon(map, 9, 23, tileRows: 4), 12);
    }

    [Fact]
    public void RowsWithDisjointSupportAreLn2Apart()
    {
        // Row 0 on keys 0-1, row 1 on keys 2-4 (sums exactly 1 in float32), row 2 equal to row 0: pairs (0,1) and (1,2) give ln 2, (0,2) gives 0.
        float[] map =
        [
            0.25f, 0.75f, 0, 0, 0,
            0, 0, 0.125f, 0.375f, 0.5f,
            0.25f, 0.75f, 0, 0, 0,
        ];
        Assert.Equal(Math.Log(2), AttentionRedundancy.MeanPairwiseJensenShannon(map.AsSpan(0, 10), 2, 5), 14);
        Assert.Equal(2 * Math.Log(2) / 3, AttentionRedundancy.MeanPairwiseJensenShannon(map, 3, 5, tileRows: 2), 14);
        Assert.Equal(2 * Math.Log(2) / 3, AttentionRedundancy.ReferenceMeanPairwiseJensenShannon(map, 3, 5), 14);
    }

    [Fact]
    public void SmallCaseEqualsTheDefinition()
    {
        const int rows = 6, cols = 7;
        var map = RandomRows(rows, cols, 11);
        // JS(p, q) = 0.5 sum p ln(2p / (p + q)) + 0.5 sum q ln(2q / (p + q)), averaged over the 15 pairs.
        double total = 0;
        int pairs = 0;
        for (int i = 0; i < rows; i++)
        for (int j = i + 1; j < rows; j++)
        {
            for (int k = 0; k < cols; k++)
            {
                double p = map[i * cols + k], q = map[j * cols + k];
                total += 0.5 * p * Math.Log(2 * p / (p + q)) + 0.5 * q * Math.Log(2 * q / (p + q));
            }
            pairs++;
        }
        double expected = total / pairs;
        Assert.True(expected > 0.05, "the random rows should differ");
        Assert.Equal(expected, AttentionRedundancy.MeanPairwiseJensenShannon(map, rows, cols, tileRows: 4), 13);
        Assert.Equal(expected, AttentionRedundancy.ReferenceMeanPairwiseJensenShannon(map, rows, cols), 13);
    }

    [Theory]
    [InlineData(37, 1)]
    [InlineData(37, 5)]
    [InlineData(37, 36)]
    [InlineData(37, 37)]
    [InlineData(37, 64)]
    [InlineData(65, 32)]
    public void TiledEqualsThePlainReference(int n, int tileRows)
    {
        var map = RandomRows(n, n, (ulong)(n * 100 + tileRows), spread: 3.0);
        // A few exact zeros, as float32 softmax underflow produces.
        for (int r = 0; r < n; r += 3) map[r * n + (r % n)] = 0;
        double plain = AttentionRedundancy.ReferenceMeanPairwiseJensenShannon(map, n, n);
        double tiled = AttentionRedundancy.MeanPairwiseJensenShannon(map, n, n, tileRows);
        Assert.True(Math.Abs(plain - tiled) <= 1e-12 * plain, $"tiled {tiled:R} vs plain {plain:R}");
    }

    [Fact]
    public void TheResultDoesNotDependOnTheThreadCount()
    {
        // Block sums are added in a fixed order, so all threads and one agree to the last bit. Inside a
        // parallel region the computation runs on the calling thread alone (no global setting is changed).
        var map = RandomRows(50, 50, 3);
        double all = AttentionRedundancy.MeanPairwiseJensenShannon(map, 50, 50, tileRows: 7);
        var single = new double[2];
        ParallelLoop.For(2, i => single[i] = AttentionRedundancy.MeanPairwiseJensenShannon(map, 50, 50, tileRows: 7));
        Assert.Equal(all, single[0]);
        Assert.Equal(all, single[1]);
    }

    [Fact]
    public void BadShapesAreRejected()
    {
        Assert.Throws<MediatorDiTException>(() => AttentionRedundancy.MeanPairwiseJensenShannon(new float[5], 1, 5));
        Assert.Throws<MediatorDiTException>(() => AttentionRedundancy.MeanPairwiseJensenShannon(new float[10], 3, 4));
    }
}
