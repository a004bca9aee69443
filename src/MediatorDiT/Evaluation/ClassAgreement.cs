namespace MediatorDiT.Evaluation;

/// <summary>
/// For class-conditional samples: the fraction whose classifier prediction (the most probable class,
/// the first on ties) equals the label they were generated for. On real data this is the accuracy.
/// </summary>
public static class ClassAgreement
{
    /// <summary>The fraction of images whose most probable class equals their label.</summary>
    /// <param name="probabilities">Class probabilities (N, classes), row-major.</param>
    /// <param name="classes">Classes per row.</param>
    /// <param name="labels">The label of each image (N), N at least 1.</param>
    /// <exception cref="MediatorDiTException">There are no labels, or not one row per label.</exception>
    public static double Compute(ReadOnlySpan<float> probabilities, int classes, ReadOnlySpan<int> labels)
    {
        if (labels.Length == 0 || probabilities.Length != (long)labels.Length * classes)
            throw new MediatorDiTException($"class agreement needs one label per image: {labels.Length} labels for {probabilities.Length / Math.Max(1, classes)} images.");
        int agree = 0;
        for (int i = 0; i < labels.Length; i++)
            if (System.Numerics.Tensors.TensorPrimitives.IndexOfMax(probabilities.Slice(i * classes, classes)) == labels[i]) agree++;
        return (double)agree / labels.Length;
    }

    /// <summary>The fraction of images whose most probable class in <paramref name="outputs"/> equals their label.</summary>
    /// <param name="outputs">The classifier's outputs for N images.</param>
    /// <param name="labels">The label of each image (N).</param>
    /// <exception cref="MediatorDiTException">The label count differs from the image count.</exception>
    public static double Compute(ClassifierOutputs outputs, ReadOnlySpan<int> labels)
    {
        if (labels.Length != outputs.Count)
            throw new MediatorDiTException($"class agreement needs one label per image, but there are {labels.Length} labels for {outputs.Count} images.");
        return Compute(outputs.Probabilities, outputs.Classes, labels);
    }
}
