using MediatorDiT.Evaluation;
using MediatorDiT.Sampling;

namespace MediatorDiT.Tests.Evaluation;

public class ThresholdGridTests
{
    [Fact]
    public void ThreeModelGridIsTheAuthors65PairsInRatio1ThenRatio2Order()
    {
        // Written out independently: ratio1 = 0.1..1.0, ratio2 = 0..ratio1, both in tenths.
        var expected = new List<(int, int)>();
        for (int r1 = 1; r1 <= 10; r1++)
        for (int r2 = 0; r2 <= r1; r2++)
            expected.Add((r1, r2));
        var grid = ThresholdGrid.For(3);
        Assert.Equal(65, grid.Count);
        Assert.Equal(expected.Count, grid.Count);
        for (int i = 0; i < grid.Count; i++)
        {
            Assert.Equal(i, grid[i].Index);
            Assert.Equal(2, grid[i].Ratios.Count);
            Assert.Equal(expected[i].Item1 / 10.0, grid[i].Ratio1);
            Assert.Equal(expected[i].Item2 / 10.0, grid[i].Ratio2);
        }
        Assert.Equal("0.1,0", grid[0].ToString());
        Assert.Equal("0.1,0.1", grid[1].ToString());
        Assert.Equal("0.2,0", grid[2].ToString());
        Assert.Equal("0.3,0.3", grid[8].ToString());
        Assert.Equal("1,1", grid[^1].ToString());
        // Every point is a schedule the sampler accepts (ratio 0 and equal ratios included).
        foreach (var p in grid) _ = new AdaptiveModelSchedule(p.Ratios, 3);
    }

    [Fact]
    public void TwoAndFourModelGridSizes()
    {
        var two = ThresholdGrid.For(2);
        Assert.Equal(10, two.Count);
        Assert.Equal(Enumerable.Range(1, 10).Select(k => k / 10.0), two.Select(p => p.Ratio1));
        Assert.All(two, p => Assert.Null(p.Ratio2));
        int four = 0;
        for (int a = 1; a <= 10; a++)
        for (int b = 0; b <= a; b++)
        for (int c = 0; c <= b; c++)
            four++;
        Assert.Equal(four, ThresholdGrid.Size(4));
        Assert.Equal(285, four);
    }

    [Fact]
    public void ALadderOfOneModelHasNoGrid()
    {
        var e = Assert.Throws<MediatorDiTException>(() => ThresholdGrid.For(1));
        Assert.Contains("at least 2 models", e.Message);
    }
}
