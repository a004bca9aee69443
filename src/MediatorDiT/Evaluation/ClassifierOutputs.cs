namespace MediatorDiT.Evaluation;

/// <summary>
/// What the classifier says about N images: penultimate features (N, FeatureDim) and class
/// probabilities (N, Classes), row-major float32.
/// </summary>
public sealed class ClassifierOutputs
{
    /// <summary>Wraps the arrays without copying.</summary>
    /// <param name="features">(count, featureDim) row-major.</param>
    /// <param name="probabilities">(count, classes) row-major.</param>
    /// <param name="count">N, the images.</param>
    /// <param name="featureDim">Features per image.</param>
    /// <param name="classes">Classes per image.</param>
    /// <exception cref="ArgumentException">An array's length does not fit the sizes.</exception>
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

    /// <summary>Penultimate features (N, FeatureDim), row-major.</summary>
    public float[] Features { get; }
    /// <summary>Softmax probabilities (N, Classes), row-major.</summary>
    public float[] Probabilities { get; }
    /// <summary>N, the images.</summary>
    public int Count { get; }
    /// <summary>Features per image.</summary>
    public int FeatureDim { get; }
    /// <summary>Classes per image.</summary>
    public int Classes { get; }

    /// <summary>The features of image <paramref name="i"/>.</summary>
    /// <param name="i">Image index in [0, Count).</param>
    public ReadOnlySpan<float> FeatureRow(int i) => Features.AsSpan(i * FeatureDim, FeatureDim);

    /// <summary>The class probabilities of image <paramref name="i"/>.</summary>
    /// <param name="i">Image index in [0, Count).</param>
    public ReadOnlySpan<float> ProbabilityRow(int i) => Probabilities.AsSpan(i * Classes, Classes);

    /// <summary>The most probable class of image i (the first on ties).</summary>
    public int Predicted(int i) => System.Numerics.Tensors.TensorPrimitives.IndexOfMax(ProbabilityRow(i));
}
