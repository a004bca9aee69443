using System.Globalization;

namespace MediatorDiT.Evaluation;

/// <summary>
/// Sample-quality metrics of a set of images against a reference set, all from the classifier's
/// penultimate features and probabilities: FID (lower is better), precision and recall in [0, 1], the
/// Inception-Score analogue in [1, classes], and, for class-conditional samples, the class agreement in
/// [0, 1] (null when no labels were given).
/// </summary>
public sealed record QualityReport
{
    /// <summary>Frechet distance of the feature Gaussians; lower is better.</summary>
    public required double Fid { get; init; }
    /// <summary>Fraction of the images on the reference's k-NN manifold.</summary>
    public required double Precision { get; init; }
    /// <summary>Fraction of the reference on the images' k-NN manifold.</summary>
    public required double Recall { get; init; }
    /// <summary>exp(mean KL(p(y|x) || p(y))), in [1, classes].</summary>
    public required double InceptionScore { get; init; }
    /// <summary>Fraction classified as the label they were generated for; null without labels.</summary>
    public double? ClassAgreement { get; init; }

    /// <summary>Images evaluated.</summary>
    public required int Count { get; init; }

    /// <summary>What they were compared with, e.g. "fashion-mnist test (10000 images)".</summary>
    public required string Reference { get; init; }

    /// <summary>The k of the k-NN manifolds.</summary>
    public required int K { get; init; }

    /// <summary>The metrics on one line.</summary>
    public override string ToString()
    {
        var inv = CultureInfo.InvariantCulture;
        string agreement = ClassAgreement is double a ? string.Create(inv, $", class agreement {a:F4}") : "";
        return string.Create(inv, $"FID {Fid:F3}, precision {Precision:F4}, recall {Recall:F4}, IS {InceptionScore:F3}{agreement} ({Count} images vs {Reference}, k = {K})");
    }
}
