
namespace MediatorDiT.Models;

/// <summary>
/// Analytic per-image FLOPs of the DiT/SiT network described by a <see cref="ModelConfig"/>.
/// One FLOP is one multiply-accumulate of a linear operator: every linear layer, matrix product and
/// convolution, plus the two fixed-weight resamplings of mediator attention (average pooling: one
/// accumulate per pooled input; bilinear resize: four per output). Nothing elementwise or
/// normalising is counted. This reproduces the published DiT/SiT and mediator figures (docs/FLOPS.md).
/// The attention's own parts come from its kind (<see cref="AttentionSpec.MixingFlops"/>).
/// </summary>
public static class FlopCounter
{
    /// <summary>Width of the sinusoidal timestep features fed to the timestep MLP.</summary>
    public const int FrequencyEmbeddingSize = 256;

    /// <summary>Side of the learned (heads, n, 7, 7) mediator position-bias maps.</summary>
    public const int BiasMapSize = 7;

    /// <summary>Depthwise conv kernel side in mediator attention.</summary>
    public const int DepthwiseKernel = 3;

    /// <summary>Per-image FLOPs by component. Throws <see cref="MediatorDiTException"/> for an invalid config.</summary>
    public static FlopReport Count(ModelConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        double n = config.NumTokens, d = config.HiddenSize, depth = config.Depth, p = config.PatchSize;

        var parts = new List<FlopComponent>
        {
            // Conv with kernel = stride = p is one (C p p) x D product per token.
            new("patch embedding", n * config.InChannels * p * p * d),
            // Computed once per image on the conditioning vector, not per token.
            new("timestep + label embedding", FrequencyEmbeddingSize * d + d * d),
            new("adaLN modulation", depth * d * 6 * d),
            new("qkv projection", depth * n * d * 3 * d),
        };
        foreach (var part in AttentionKinds.For(config).MixingFlops(config)) parts.Add(new FlopComponent(part.Name, depth * part.Flops));
        parts.Add(new FlopComponent("output projection", depth * n * d * d));
        parts.Add(new FlopComponent("MLP", depth * 2 * n * d * config.MlpHidden));
        parts.Add(new FlopComponent("final layer", 2 * d * d + n * d * p * p * config.OutChannels));
        return new FlopReport(config, parts);
    }

    /// <summary>FLOPs of one block's attention module: qkv, everything between, and the output projection.</summary>
    public static double AttentionFlopsPerBlock(ModelConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        return AttentionKinds.For(config).FlopsPerBlock(config);
    }

    /// <summary>
    /// FLOPs of one block's token-mixing products only: Q K^T and A V for full attention (quadratic in
    /// tokens), or the four mediator products (linear in tokens).
    /// </summary>
    public static double AttentionProductFlopsPerBlock(ModelConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        return AttentionKinds.For(config).ProductFlops(config);
    }

    /// <summary>
    /// Accumulates of the adaptive average pool from an s x s grid to g x g, per channel. PyTorch's window
    /// i spans [floor(i s / g), ceil((i + 1) s / g)); windows overlap when g does not divide s, so this is
    /// (sum of window lengths)^2, which is s^2 in the divisible case.
    /// </summary>
    public static double AdaptivePoolAccumulates(int inputSide, int outputSide)
    {
        if (inputSide <= 0 || outputSide <= 0)
            throw new MediatorDiTException($"pool sides must be positive, got {inputSide} -> {outputSide}.");
        long lengths = 0;
        for (long i = 0; i < outputSide; i++)
        {
            long start = i * inputSide / outputSide;
            long end = ((i + 1) * inputSide + outputSide - 1) / outputSide;
            lengths += end - start;
        }
        return (double)lengths * lengths;
    }
}
