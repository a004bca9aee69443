using MediatorDiT.Tensors;

namespace MediatorDiT.Sampling;

/// <summary>
/// What a sampler evaluates: the network's prediction (velocity, score or noise, as the transport says)
/// at states x (N, C, H, W), times t (N) and labels y (N). A plain network, a guided one, or any function
/// of that shape. Implementations need not be thread-safe; a sampler calls one at a time.
/// </summary>
public interface IModelFunction
{
    /// <summary>
    /// Rows of the batch that belong to one sample: 1 for a plain network; 2 for classifier-free
    /// guidance, whose batch is [conditional half; unconditional half] as in the official code, so sample
    /// s owns rows s and s + N/2.
    /// </summary>
    int RowsPerSample { get; }

    /// <summary>Returns the prediction (N, C, H, W) for x (N, C, H, W), t (N), y (N).</summary>
    Tensor Evaluate(Tensor x, ReadOnlySpan<float> t, ReadOnlySpan<int> y);
}
