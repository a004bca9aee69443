namespace MediatorDiT.Evaluation;

/// <summary>
/// For class-conditional samples: the fraction whose classifier prediction (the most probable class,
/// the first on ties) equals the label they were generated for. On real data this is the accuracy.
/// </summary>
public static class ClassAgreement
{
    public static double Compute(ReadOnlySpan<float> probabilities, int classes, ReadOnlySpan<int> labels)
    {
        if (labels.Length == 0 || probabilities.Length != (long)labels.Length * classes)
            throw new MediatorDiTException($"class agreement needs one label per image: {labels.Length} labels for {probabilities.Length / Math.Max(1, classes)} images.");
        int agree = 0;
        for (int i = 0; i < labels.Length; i++)
            if (System.Numerics.Tensors.TensorPrimitives.IndexOfMax(probabilities.Slice(i * classes, classes)) == labels[i]) agree++;
        return (double)agree / labels.Length;
    }

    public static double Compute(ClassifierOutputs outputs, ReadOnlySpan<int> labels)
    {
        if (labels.Length != outputs.Count)
            throw new MediatorDiTException($"class agreement needs one label per image, but there are {labels.Length} labels for {outputs.Count} images.");
        return Compute(outputs.Probabilities, outputs.Classes, labels);
    }
}
