namespace MediatorDiT.Evaluation;

/// <summary>
/// What the classifier says about N images: penultimate features (N, FeatureDim) and class
/// probabilities (N, Classes), row-major float32.
/// </summary>
public sealed class ClassifierOutputs
{
    public ClassifierOutputs(float[] features, float[] probabilities, int count, int featureDim, int classes)
    {
        if (features.Length != (long)count * featureDim || probabilities.Length != (long)count * classes)
            throw new ArgumentException($"features {features.Length} and probabilities {probabilities.Length} do not fit {count} x ({featureDim}, {classes}).");
        Features = features;
        Probabilities = probabilities;
        Count = count;
        FeatureDim = featureDim;
        Classes = classes;
    }

    public float[] Features { get; }
    public float[] Probabilities { get; }
    public int Count { get; }
    public int FeatureDim { get; }
    public int Classes { get; }

    public ReadOnlySpan<float> FeatureRow(int i) => Features.AsSpan(i * FeatureDim, FeatureDim);

    public ReadOnlySpan<float> ProbabilityRow(int i) => Probabilities.AsSpan(i * Classes, Classes);

    /// <summary>The most probable class of image i (the first on ties).</summary>
    public int Predicted(int i) => System.Numerics.Tensors.TensorPrimitives.IndexOfMax(ProbabilityRow(i));
}
