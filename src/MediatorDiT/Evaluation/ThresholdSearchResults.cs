using MediatorDiT.Tensors;

namespace MediatorDiT.Evaluation;

/// <summary>Reported after each sampling run of a sweep: runs done of all, network calls made and asked for.</summary>
/// <param name="Phase">"sweep" (all pairs, proxy seeds) or "refine" (candidates, more seeds).</param>
/// <param name="RunsDone">Sampling runs finished in this phase.</param>
/// <param name="Runs">Sampling runs of the phase.</param>
/// <param name="NetworkCalls">Network calls made so far.</param>
/// <param name="RequestedCalls">Evaluations the runs asked for: what independent runs would cost.</param>
public sealed record ThresholdSearchProgress(string Phase, int RunsDone, int Runs, long NetworkCalls, long RequestedCalls);

/// <summary>
/// One schedule's runs over the seed set: its samples (B, C, H, W) in seed order, mean GFLOPs per image,
/// and for each switch i (leaving model i - 1, 1-based) the mean step at which a model of index &gt;= i
/// first served (over the samples that got there; NaN if none did) and the fraction of samples that did.
/// </summary>
public sealed record PairRun(ThresholdPair Pair, Tensor Samples, double GflopsPerImage,
    IReadOnlyList<double> MeanSwitchStep, IReadOnlyList<double> SwitchedFraction);

/// <summary>
/// The runs of a sweep, the largest model alone on the same seeds (the proxy's reference and the cost
/// baseline), and the network calls made against those independent runs would have made.
/// </summary>
public sealed record SweepRuns(IReadOnlyList<PairRun> Runs, Tensor LargestModelSamples, double LargestModelGflopsPerImage,
    int[] Labels, long NetworkCalls, long RequestedCalls);

/// <summary>A scored grid point: cost, quality (lower is better) and switch statistics.</summary>
public sealed record PairResult(ThresholdPair Pair, double GflopsPerImage, double Score,
    IReadOnlyList<double> MeanSwitchStep, IReadOnlyList<double> SwitchedFraction);

/// <summary>
/// A scored sweep: every pair, the positions (in <see cref="Pairs"/>) of its Pareto frontier by ascending
/// GFLOPs, the scorer's name, the largest model's cost alone, the seed count and the sharing statistics.
/// </summary>
public sealed record ThresholdSearchResult(IReadOnlyList<PairResult> Pairs, IReadOnlyList<int> Frontier, string ScorerName,
    double LargestModelGflopsPerImage, int Samples, long NetworkCalls, long RequestedCalls);

/// <summary>A candidate re-scored on the refine seeds, with its proxy values beside.</summary>
/// <param name="Position">Its position in the proxy result's <see cref="ThresholdSearchResult.Pairs"/>.</param>
/// <param name="Pair">The switch ratios.</param>
/// <param name="ProxyGflopsPerImage">Mean GFLOPs per image on the proxy seeds.</param>
/// <param name="ProxyScore">The proxy's score (lower is better).</param>
/// <param name="GflopsPerImage">Mean GFLOPs per image on the refine seeds.</param>
/// <param name="Score">The expensive scorer's score on the refine seeds (lower is better).</param>
public sealed record RefinedPair(int Position, ThresholdPair Pair, double ProxyGflopsPerImage, double ProxyScore,
    double GflopsPerImage, double Score);

/// <summary>
/// How well the proxy predicted the expensive scorer on the refined candidates: Spearman's rho between
/// the two scores, and the grid indices on both frontiers, on the proxy's only, and on the refined only
/// (frontiers over the candidates: proxy GFLOPs and score, refined GFLOPs and score).
/// </summary>
public sealed record FrontierAgreement(double Spearman, IReadOnlyList<int> Kept, IReadOnlyList<int> OnlyProxy, IReadOnlyList<int> OnlyRefined);

/// <summary>The refine step's outcome.</summary>
public sealed record ThresholdRefinement(IReadOnlyList<RefinedPair> Pairs, string ScorerName, int Samples,
    FrontierAgreement Agreement, long NetworkCalls, long RequestedCalls);

/// <summary>The chosen schedule and why: by the refined score or the proxy's, under which budget.</summary>
public sealed record ChosenSchedule(ThresholdPair Pair, double GflopsPerImage, double Score, bool ByRefinedScore, double? BudgetGflops);
