using MediatorDiT.Diffusion;
using MediatorDiT.Models;
using MediatorDiT.Tensors;

namespace MediatorDiT.Sampling;

/// <summary>Adapters from a DiT-family network (integer timesteps as floats, all 2C channels returned) to a <see cref="NoisePredictor"/>.</summary>
public static class DitNoisePredictors
{
    /// <summary>model(x, t, y) with fixed labels (B).</summary>
    public static NoisePredictor Conditional(SiTModel model, int[] labels) =>
        (x, t) => model.Forward(x, ToFloats(t), labels);

    /// <summary>
    /// DiT's forward_with_cfg on a doubled batch: labels (2B) are the classes followed by the null label;
    /// the conditional half of x is run under both labels and <paramref name="guidance"/> is applied to its
    /// channels (of the C predicted-noise channels, never the learned-variance ones), both halves getting the result.
    /// </summary>
    public static NoisePredictor Guided(SiTModel model, int[] labels, ClassifierFreeGuidance guidance)
    {
        ArgumentNullException.ThrowIfNull(guidance);
        int channels = guidance.ChannelsFor(model.Config.InChannels);
        return (x, t) => model.ForwardWithCfg(x, ToFloats(t), labels, guidance.Scale, channels);
    }

    /// <summary>
    /// A DiT network evaluated elsewhere (on a device, <see cref="ModelLadder.DiffusionNetwork"/>) with fixed labels:
    /// <see cref="Conditional"/> or, for a guided function and the doubled labels, <see cref="Guided"/>.
    /// </summary>
    internal static NoisePredictor Of(IModelFunction network, int[] labels) =>
        (x, t) => network.Evaluate(x, ToFloats(t), labels);

    private static float[] ToFloats(int[] t)
    {
        var values = new float[t.Length];
        for (int i = 0; i < t.Length; i++) values[i] = t[i];
        return values;
    }
}
