namespace MediatorDiT.Evaluation;

/// <summary>
/// The non-dominated points of (cost, score), both lower is better: no other point is at most as costly
/// and at most as bad with one of the two strictly better. Points equal in both count once (the first).
/// Points with a NaN coordinate are left out.
/// </summary>
internal static class ParetoFrontier
{
    /// <summary>Indices of the frontier by ascending cost (and so strictly descending score).</summary>
    public static int[] Of(IReadOnlyList<double> cost, IReadOnlyList<double> score)
    {
        ArgumentNullException.ThrowIfNull(cost);
        ArgumentNullException.ThrowIfNull(score);
        if (cost.Count != score.Count) throw new ArgumentException($"{cost.Count} costs against {score.Count} scores.");
        var order = Enumerable.Range(0, cost.Count)
            .Where(i => !double.IsNaN(cost[i]) && !double.IsNaN(score[i]))
            .OrderBy(i => cost[i]).ThenBy(i => score[i]).ThenBy(i => i);
        var frontier = new List<int>();
        double best = double.PositiveInfinity;
        foreach (int i in order)
        {
            // Sorted by cost then score: a point is dominated exactly when an earlier one scored at least as
            // well; the first (cheapest, best among the cheapest) never is.
            if (frontier.Count == 0 || score[i] < best)
            {
                frontier.Add(i);
                best = score[i];
            }
        }
        return frontier.ToArray();
    }
}
