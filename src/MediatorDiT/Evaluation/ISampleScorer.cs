using MediatorDiT.Tensors;

namespace MediatorDiT.Evaluation;

/// <summary>
/// A quality measure of a set of samples, lower is better (a distance or an FID). The threshold search
/// scores each schedule's samples with one; a cheap proxy ranks all schedules and an expensive scorer
/// (FID from a trained classifier, say) re-scores a few of them.
/// </summary>
public interface ISampleScorer
{
    /// <summary>Short name for reports and CSV headers, e.g. "reference-rms".</summary>
    string Name { get; }

    /// <summary>
    /// Scores images (B, C, H, W) (the sampler's output: pixels or latents) drawn with class labels
    /// <paramref name="labels"/> (B). Sample i always comes from the same initial noise and label, whatever
    /// the schedule, so a scorer may compare samples index by index.
    /// </summary>
    double Score(Tensor images, int[] labels, CancellationToken cancellationToken);
}

/// <summary>
/// Builds a scorer for one seed set, given what the largest model alone makes from the same noise and
/// labels (B, C, H, W), the reference of the proxy scorers. A scorer that needs no reference (an FID
/// against data statistics) ignores it: <c>_ =&gt; myScorer</c> (see <see cref="SampleScorers.Fixed"/>).
/// </summary>
public delegate ISampleScorer SampleScorerFactory(Tensor largestModelSamples, int[] labels);

/// <summary>The scorer factories of this library.</summary>
public static class SampleScorers
{
    /// <summary>Mean per-image RMS distance to the largest model's sample from the same noise.</summary>
    public static SampleScorerFactory ReferenceDistance => (reference, _) => new ReferenceDistanceScorer(reference);

    /// <summary>Frechet distance of pooled-pixel features to those of the largest model's samples.</summary>
    public static SampleScorerFactory PooledFrechet(int pool = 2) => (reference, _) => new PooledFrechetScorer(reference, pool);

    /// <summary>A scorer that needs no reference, used as it is for every seed set.</summary>
    public static SampleScorerFactory Fixed(ISampleScorer scorer)
    {
        ArgumentNullException.ThrowIfNull(scorer);
        return (_, _) => scorer;
    }
}
