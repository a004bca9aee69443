using MediatorDiT.Tensors;

namespace MediatorDiT.Evaluation;

/// <summary>
/// The cheap proxy of the threshold search: the mean over images of the root-mean-square difference
/// between each image and the largest model's sample from the same noise and label. 0 for the largest
/// model itself; it grows as a schedule leaves the large model's trajectory.
/// </summary>
public sealed class ReferenceDistanceScorer : ISampleScorer
{
    private readonly Tensor _reference;

    /// <summary>Scores against <paramref name="reference"/>, image by image.</summary>
    /// <param name="reference">The largest model's samples (B, C, H, W), in seed order.</param>
    /// <exception cref="MediatorDiTException">The reference is not (B, ...) with B at least 1.</exception>
    public ReferenceDistanceScorer(Tensor reference)
    {
        ArgumentNullException.ThrowIfNull(reference);
        if (reference.Rank < 2 || reference.Dim(0) == 0)
            throw new MediatorDiTException($"the reference samples must be (B, ...) with B >= 1, got [{reference.ShapeString}].");
        _reference = reference;
    }

    /// <inheritdoc/>
    public string Name => "reference-rms";

    /// <inheritdoc/>
    /// <remarks>The images must have the reference's shape: the same seed set.</remarks>
    public double Score(Tensor images, int[] labels, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (!images.SameShape(_reference))
            throw new MediatorDiTException($"the scored samples are [{images.ShapeString}] but the reference samples are [{_reference.ShapeString}]; score the same seed set.");
        int n = images.Dim(0), per = images.Length / n;
        var a = images.Span;
        var b = _reference.Span;
        double total = 0;
        for (int s = 0; s < n; s++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            double sum = 0;
            for (int i = s * per, end = i + per; i < end; i++)
            {
                double d = a[i] - b[i];
                sum += d * d;
            }
            total += Math.Sqrt(sum / per);
        }
        return total / n;
    }
}
