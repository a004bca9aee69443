namespace MediatorDiT.Evaluation;

/// <summary>
/// The Inception Score computed with this library's classifier: exp(E_x KL(p(y|x) || p(y))), where p(y)
/// is the mean of the predicted distributions over the set. It lies between 1 (every image gets the same
/// prediction) and the number of classes (confident predictions spread evenly over the classes).
/// Terms with p(y|x) = 0 contribute 0. Float64 throughout.
/// </summary>
public static class InceptionScore
{
    /// <summary>probabilities (N, classes) row-major, each row summing to one.</summary>
    public static double Compute(ReadOnlySpan<float> probabilities, int count, int classes)
    {
        if (count < 1 || probabilities.Length != (long)count * classes)
            throw new ArgumentException($"probabilities hold {probabilities.Length} values, not {count} x {classes} with at least one row.");
        var marginal = new double[classes];
        for (int i = 0; i < count; i++)
            for (int c = 0; c < classes; c++) marginal[c] += probabilities[i * classes + c];
        for (int c = 0; c < classes; c++) marginal[c] /= count;
        double kl = 0;
        for (int i = 0; i < count; i++)
            for (int c = 0; c < classes; c++)
            {
                double p = probabilities[i * classes + c];
                if (p > 0) kl += p * (Math.Log(p) - Math.Log(marginal[c]));
            }
        return Math.Exp(kl / count);
    }

    /// <summary>The score of <paramref name="outputs"/>' class probabilities.</summary>
    /// <param name="outputs">The classifier's outputs for the images.</param>
    public static double Compute(ClassifierOutputs outputs) => Compute(outputs.Probabilities, outputs.Count, outputs.Classes);
}
