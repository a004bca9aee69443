using MediatorDiT.Tensors;

namespace MediatorDiT.Evaluation;

/// <summary>
/// The threshold search's expensive scorer: FID of the samples against a real split's statistics, with
/// the library's classifier as the feature extractor (<see cref="SampleEvaluator"/>; lower is better). It
/// needs no reference samples from the ladder, so one instance serves every seed set
/// (<see cref="SampleScorers.Fixed"/>). Only the Gaussian part of the evaluation is computed: the k-NN
/// manifolds of precision and recall would cost more than the FID itself.
/// </summary>
public sealed class FidScorer : ISampleScorer
{
    private readonly SampleEvaluator _evaluator;
    private readonly ReferenceStatistics _reference;

    /// <summary>Scores against <paramref name="reference"/> with <paramref name="evaluator"/>'s classifier.</summary>
    /// <param name="evaluator">The evaluator whose classifier extracts the features.</param>
    /// <param name="reference">Statistics from <paramref name="evaluator"/>'s own Reference (e.g. the dataset's test split).</param>
    public FidScorer(SampleEvaluator evaluator, ReferenceStatistics reference)
    {
        ArgumentNullException.ThrowIfNull(evaluator);
        ArgumentNullException.ThrowIfNull(reference);
        if (reference.ClassifierFingerprint != evaluator.Fingerprint)
            throw new MediatorDiTException($"the reference statistics '{reference.Name}' were computed with another classifier; compute them with this evaluator's Reference.");
        _evaluator = evaluator;
        _reference = reference;
    }

    /// <inheritdoc/>
    public string Name => "fid";

    /// <summary>FID of images (B, C, S, S) in [-1, 1] (the classifier's input shape, B &gt;= 2) against the reference.</summary>
    public double Score(Tensor images, int[] labels, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.Rank != 4 || images.Dim(0) < 2)
            throw new MediatorDiTException($"FID needs at least 2 images (B, C, H, W) to fit a covariance, got [{images.ShapeString}].");
        var outputs = _evaluator.Extract(images, cancellationToken);
        var gaussian = GaussianStatistics.FromFeatures(outputs.Features, outputs.Count, outputs.FeatureDim);
        return FrechetDistance.Compute(gaussian, _reference.Gaussian);
    }
}
