using MediatorDiT.Evaluation;

namespace MediatorDiT.Tests.Evaluation;

public class ParetoAndSelectionTests
{
    [Fact]
    public void FrontierOfConstructedPoints()
    {
        //            0    1    2    3    4    5    6    7         8
        double[] c = [1.0, 2.0, 2.0, 3.0, 4.0, 5.0, 3.0, double.NaN, 6.0];
        double[] s = [9.0, 7.0, 8.0, 7.0, 4.0, 4.0, 5.0, 1.0, 4.0];
        // 1 beats 2 (same cost, better) and 3 (cheaper, same score); 6 (3, 5) is on it; 5 and 8 tie 4's
        // score at a higher cost; 7 has no cost.
        Assert.Equal([0, 1, 6, 4], ParetoFrontier.Of(c, s));
    }

    [Fact]
    public void EqualPointsCountOnceAndTheCheapestIsAlwaysOnTheFrontier()
    {
        Assert.Equal([1, 2], ParetoFrontier.Of([2.0, 1.0, 1.5, 1.0], [1.0, 3.0, 1.0, 3.0]));
        Assert.Equal([0], ParetoFrontier.Of([1.0, 2.0], [double.PositiveInfinity, double.PositiveInfinity]));
        Assert.Empty(ParetoFrontier.Of([], []));
    }

    [Fact]
    public void BudgetPicksTheBestScoreThatFits()
    {
        double[] c = [1.0, 2.0, 3.0, 4.0];
        double[] s = [5.0, 3.0, 3.0, 1.0];
        Assert.Equal(3, ThresholdSelection.Best(c, s, null));
        Assert.Equal(3, ThresholdSelection.Best(c, s, 4.0)); // the budget is inclusive
        Assert.Equal(1, ThresholdSelection.Best(c, s, 3.5)); // 1 and 2 tie on score; 1 is cheaper
        Assert.Equal(0, ThresholdSelection.Best(c, s, 1.0));
        Assert.Equal(-1, ThresholdSelection.Best(c, s, 0.5));
    }

    private static ThresholdSearchResult Result(params (double Gflops, double Score)[] points)
    {
        var grid = ThresholdGrid.For(3);
        var pairs = points.Select((p, i) => new PairResult(grid[i], p.Gflops, p.Score, [double.NaN, double.NaN], [0.0, 0.0])).ToArray();
        return new ThresholdSearchResult(pairs, ParetoFrontier.Of(pairs.Select(p => p.GflopsPerImage).ToArray(), pairs.Select(p => p.Score).ToArray()),
            "test", 10, 4, 100, 200);
    }

    [Fact]
    public void ChooseWithoutFitNamesTheCheapest()
    {
        var result = Result((3.5, 2), (2.25, 3), (4, 1));
        var chosen = ThresholdSelection.Choose(result, null, 3.6);
        Assert.Equal("0.1,0", chosen.Pair.ToString());
        Assert.False(chosen.ByRefinedScore);
        var e = Assert.Throws<MediatorDiTException>(() => ThresholdSelection.Choose(result, null, 2.0));
        Assert.Contains("budget of 2 GFLOPs", e.Message);
        Assert.Contains("ratios 0.1,0.1", e.Message);
        Assert.Contains("2.25 GFLOPs", e.Message);
        Assert.Contains("positive", Assert.Throws<MediatorDiTException>(() => ThresholdSelection.Choose(result, null, -1)).Message);
    }

    [Fact]
    public void ChooseUsesRefinedScoresWhenARefinedPairFits()
    {
        var result = Result((1, 5), (2, 3), (3, 1));
        var grid = ThresholdGrid.For(3);
        var refined = new ThresholdRefinement(
            [new RefinedPair(1, grid[1], 2, 3, 2.1, 0.5), new RefinedPair(2, grid[2], 3, 1, 3.1, 0.7)], "expensive", 8,
            new FrontierAgreement(double.NaN, [], [], []), 0, 0);
        var chosen = ThresholdSelection.Choose(result, refined, null);
        Assert.True(chosen.ByRefinedScore);
        Assert.Equal(1, chosen.Pair.Index);
        Assert.Equal(2.1, chosen.GflopsPerImage);
        // No refined pair fits 2.0 (their refined costs are 2.1 and 3.1): the proxy decides among all.
        var fallback = ThresholdSelection.Choose(result, refined, 2.0);
        Assert.False(fallback.ByRefinedScore);
        Assert.Equal(1, fallback.Pair.Index);
    }

    [Fact]
    public void RefineCandidatesAreSpreadAlongTheFrontierWithinTheBudget()
    {
        var result = Result((1, 7), (2, 6), (3, 5), (4, 4), (5, 3), (6, 2), (7, 1));
        Assert.Equal([0, 1, 2, 3, 4, 5, 6], result.Frontier);
        Assert.Equal([0, 3, 6], ThresholdRefiner.ChooseCandidates(result, 3, null));
        Assert.Equal([6], ThresholdRefiner.ChooseCandidates(result, 1, null));
        Assert.Equal([0, 2, 4], ThresholdRefiner.ChooseCandidates(result, 3, 5.5));
        Assert.Equal([0, 1], ThresholdRefiner.ChooseCandidates(result, 5, 2));
        // Nothing within the budget: the whole frontier is a candidate.
        Assert.Equal([0, 6], ThresholdRefiner.ChooseCandidates(result, 2, 0.5));
    }

    [Fact]
    public void RankCorrelationOfKnownOrders()
    {
        Assert.Equal(0.8, RankCorrelation.Spearman([1.0, 2, 3, 4], [1.0, 3, 2, 4]), 12);
        Assert.Equal(-1.0, RankCorrelation.Spearman([1.0, 2, 3], [30.0, 20, 10]), 12);
        // Ties take the mean rank: ranks (1.5, 1.5, 3) against (1, 2, 3) give 1.5 / sqrt(1.5 * 2).
        Assert.Equal(1.5 / Math.Sqrt(3), RankCorrelation.Spearman([1.0, 1, 2], [1.0, 2, 3]), 12);
        Assert.Equal([1.5, 1.5, 3.0], RankCorrelation.Ranks([7.0, 7, 9]));
        Assert.True(double.IsNaN(RankCorrelation.Spearman([1.0, 1], [1.0, 2])));
        Assert.True(double.IsNaN(RankCorrelation.Spearman([1.0], [1.0])));
    }
}
