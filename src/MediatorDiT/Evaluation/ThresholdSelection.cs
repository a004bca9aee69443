using System.Globalization;

namespace MediatorDiT.Evaluation;

/// <summary>Picks the schedule to use: the best score whose mean GFLOPs per image fits a budget.</summary>
public static class ThresholdSelection
{
    /// <summary>
    /// The index with the lowest score among those with cost &lt;= budget (all without a budget); ties go to
    /// the cheaper, then the earlier. NaN scores count as worst. -1 when nothing fits.
    /// </summary>
    public static int Best(IReadOnlyList<double> cost, IReadOnlyList<double> score, double? budget)
    {
        ArgumentNullException.ThrowIfNull(cost);
        ArgumentNullException.ThrowIfNull(score);
        int best = -1;
        for (int i = 0; i < cost.Count; i++)
        {
            if (budget is double b && !(cost[i] <= b)) continue;
            if (best < 0) { best = i; continue; }
            double s = double.IsNaN(score[i]) ? double.PositiveInfinity : score[i];
            double sb = double.IsNaN(score[best]) ? double.PositiveInfinity : score[best];
            if (s < sb || (s == sb && cost[i] < cost[best])) best = i;
        }
        return best;
    }

    /// <summary>
    /// The chosen schedule: with a refinement, the best refined score among refined pairs whose refined
    /// GFLOPs fit; else (or if none of them fits) the best proxy score among all pairs that fit. Throws a
    /// <see cref="MediatorDiTException"/> naming the cheapest pair when none fits the budget.
    /// </summary>
    public static ChosenSchedule Choose(ThresholdSearchResult proxy, ThresholdRefinement? refined, double? budgetGflops)
    {
        ArgumentNullException.ThrowIfNull(proxy);
        if (budgetGflops is double b && !(b > 0))
            throw new MediatorDiTException($"the GFLOPs budget must be a positive number, got {b}.");
        if (proxy.Pairs.Count == 0) throw new MediatorDiTException("the threshold search produced no pairs to choose from.");
        if (refined is { Pairs.Count: > 0 })
        {
            var r = refined.Pairs;
            int i = Best(r.Select(p => p.GflopsPerImage).ToArray(), r.Select(p => p.Score).ToArray(), budgetGflops);
            if (i >= 0) return new ChosenSchedule(r[i].Pair, r[i].GflopsPerImage, r[i].Score, true, budgetGflops);
        }
        var pairs = proxy.Pairs;
        int j = Best(pairs.Select(p => p.GflopsPerImage).ToArray(), pairs.Select(p => p.Score).ToArray(), budgetGflops);
        if (j < 0)
        {
            var cheapest = pairs.MinBy(p => p.GflopsPerImage)!;
            throw new MediatorDiTException(string.Create(CultureInfo.InvariantCulture,
                $"no schedule fits the budget of {budgetGflops} GFLOPs per image: the cheapest, ratios {cheapest.Pair}, needs {cheapest.GflopsPerImage:G6} GFLOPs per image; raise --budget-gflops to at least that."));
        }
        return new ChosenSchedule(pairs[j].Pair, pairs[j].GflopsPerImage, pairs[j].Score, false, budgetGflops);
    }
}
