namespace MediatorDiT.Evaluation;

/// <summary>
/// The refine step: re-scores a few candidates of the proxy's Pareto frontier with an expensive scorer
/// (FID and the like) on a larger seed set, and reports how far the proxy's frontier is from the one the
/// expensive scorer draws. The refine seeds are the search's seed stream extended to
/// <see cref="Samples"/> samples (same seed and batch size, so the first samples are the proxy's own).
/// </summary>
public sealed class ThresholdRefiner
{
    private readonly SampleScorerFactory _scorer;

    /// <summary>Samples in the refine seed set.</summary>
    public int Samples { get; }

    /// <summary>At most this many frontier points are re-scored.</summary>
    public int Candidates { get; }

    /// <summary>A refiner with a scorer built per seed set from the largest model's samples.</summary>
    public ThresholdRefiner(SampleScorerFactory scorer, int samples, int candidates)
    {
        ArgumentNullException.ThrowIfNull(scorer);
        if (samples < 1) throw new MediatorDiTException($"the refine step needs at least one sample, got {samples}.");
        if (candidates < 1) throw new MediatorDiTException($"the refine step needs at least one candidate, got {candidates}.");
        _scorer = scorer;
        Samples = samples;
        Candidates = candidates;
    }

    /// <summary>A refiner with any scorer that needs no reference, e.g. an FID against dataset statistics.</summary>
    public ThresholdRefiner(ISampleScorer scorer, int samples, int candidates) : this(SampleScorers.Fixed(scorer), samples, candidates)
    {
    }

    /// <summary>
    /// Positions (in <paramref name="proxy"/>.Pairs) of the candidates: the proxy frontier's points (those
    /// within the budget, if any are), thinned to <paramref name="count"/> evenly spaced along the frontier,
    /// both ends kept (with one, the best-scoring).
    /// </summary>
    public static int[] ChooseCandidates(ThresholdSearchResult proxy, int count, double? budgetGflops)
    {
        ArgumentNullException.ThrowIfNull(proxy);
        var frontier = proxy.Frontier.ToArray();
        if (budgetGflops is double b)
        {
            var fitting = frontier.Where(i => proxy.Pairs[i].GflopsPerImage <= b).ToArray();
            if (fitting.Length > 0) frontier = fitting;
        }
        if (frontier.Length <= count) return frontier;
        if (count == 1) return [frontier[^1]];
        return Enumerable.Range(0, count).Select(k => frontier[(int)Math.Round(k * (frontier.Length - 1) / (double)(count - 1))]).Distinct().ToArray();
    }

    /// <summary>
    /// Re-runs up to <see cref="Candidates"/> points of <paramref name="proxy"/>'s frontier (within the budget, when
    /// some fit) on <see cref="Samples"/> seeds and scores them with the expensive scorer.
    /// </summary>
    /// <param name="search">The search that produced <paramref name="proxy"/> (ladder, sampler, seeds).</param>
    /// <param name="proxy">The proxy sweep's result.</param>
    /// <param name="budgetGflops">Prefer frontier points at or below this many GFLOPs per image; null: no budget.</param>
    /// <param name="progress">Receives a report after each run.</param>
    /// <param name="cancellationToken">Stops between runs.</param>
    /// <exception cref="MediatorDiTException">The proxy frontier is empty.</exception>
    public ThresholdRefinement Refine(ThresholdSearch search, ThresholdSearchResult proxy, double? budgetGflops = null,
        IProgress<ThresholdSearchProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(search);
        ArgumentNullException.ThrowIfNull(proxy);
        var positions = ChooseCandidates(proxy, Candidates, budgetGflops);
        if (positions.Length == 0) throw new MediatorDiTException("the proxy frontier is empty; there is nothing to refine.");
        var pairs = positions.Select(i => proxy.Pairs[i].Pair).ToArray();
        var runs = search.Sweep(pairs, Samples, "refine", progress, cancellationToken);
        var scorer = _scorer(runs.LargestModelSamples, runs.Labels);
        var refined = new RefinedPair[positions.Length];
        for (int k = 0; k < positions.Length; k++)
        {
            var p = proxy.Pairs[positions[k]];
            var run = runs.Runs[k];
            refined[k] = new RefinedPair(positions[k], p.Pair, p.GflopsPerImage, p.Score, run.GflopsPerImage,
                scorer.Score(run.Samples, runs.Labels, cancellationToken));
        }
        return new ThresholdRefinement(refined, scorer.Name, Samples, Compare(refined), runs.NetworkCalls, runs.RequestedCalls);
    }

    /// <summary>Rank correlation of the two scores and the two frontiers over the refined pairs (grid indices).</summary>
    public static FrontierAgreement Compare(IReadOnlyList<RefinedPair> refined)
    {
        ArgumentNullException.ThrowIfNull(refined);
        double rho = RankCorrelation.Spearman(refined.Select(r => r.ProxyScore).ToArray(), refined.Select(r => r.Score).ToArray());
        var proxyFrontier = ParetoFrontier.Of(refined.Select(r => r.ProxyGflopsPerImage).ToArray(), refined.Select(r => r.ProxyScore).ToArray())
            .Select(i => refined[i].Pair.Index).ToHashSet();
        var refinedFrontier = ParetoFrontier.Of(refined.Select(r => r.GflopsPerImage).ToArray(), refined.Select(r => r.Score).ToArray())
            .Select(i => refined[i].Pair.Index).ToHashSet();
        var order = refined.Select(r => r.Pair.Index).ToArray();
        return new FrontierAgreement(rho,
            order.Where(i => proxyFrontier.Contains(i) && refinedFrontier.Contains(i)).ToArray(),
            order.Where(i => proxyFrontier.Contains(i) && !refinedFrontier.Contains(i)).ToArray(),
            order.Where(i => !proxyFrontier.Contains(i) && refinedFrontier.Contains(i)).ToArray());
    }
}
