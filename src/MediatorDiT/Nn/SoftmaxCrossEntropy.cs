namespace MediatorDiT.Nn;

/// <summary>
/// F.cross_entropy(logits, labels) with mean reduction: logits (B, C), loss = mean_b (logsumexp(z_b) - z_b[y_b]);
/// its gradient dz = (softmax(z) - onehot(y)) / B. Each row in float64 with the maximum subtracted.
/// </summary>
internal static class SoftmaxCrossEntropy
{
    /// <summary>Returns the mean loss and writes dLogits (may be empty to skip), and the row probabilities into <paramref name="probabilities"/> when not empty.</summary>
    public static double ForwardBackward(ReadOnlySpan<float> logits, ReadOnlySpan<int> labels, int classes,
        Span<float> dLogits, Span<float> probabilities = default)
    {
        int batch = labels.Length;
        if (logits.Length < batch * classes || (!dLogits.IsEmpty && dLogits.Length < batch * classes) ||
            (!probabilities.IsEmpty && probabilities.Length < batch * classes))
            throw new ArgumentException($"SoftmaxCrossEntropy: buffers do not fit {batch}x{classes}.");
        double total = 0;
        for (int b = 0; b < batch; b++)
        {
            var z = logits.Slice(b * classes, classes);
            int y = labels[b];
            if ((uint)y >= (uint)classes) throw new ArgumentOutOfRangeException(nameof(labels), y, $"labels must lie in [0, {classes}).");
            double max = double.NegativeInfinity;
            for (int c = 0; c < classes; c++) max = Math.Max(max, z[c]);
            double sum = 0;
            for (int c = 0; c < classes; c++) sum += Math.Exp(z[c] - max);
            double logSum = max + Math.Log(sum);
            total += logSum - z[y];
            for (int c = 0; c < classes; c++)
            {
                double p = Math.Exp(z[c] - logSum);
                if (!probabilities.IsEmpty) probabilities[b * classes + c] = (float)p;
                if (!dLogits.IsEmpty) dLogits[b * classes + c] = (float)((p - (c == y ? 1 : 0)) / batch);
            }
        }
        return batch == 0 ? 0 : total / batch;
    }
}
