using MediatorDiT.Nn;
using MediatorDiT.Tensors;

namespace MediatorDiT.Models;

/// <summary>
/// The official initialisation: xavier-uniform linears (and the patch conv viewed as a linear) with zero
/// biases, N(0, 0.02) label table and timestep MLP weights, zeroed adaLN modulations and output layer
/// (adaLN-Zero), trunc-normal(0.02) mediator position biases, PyTorch's default init for the depthwise
/// conv (uniform +-1/sqrt(9)). pos_embed stays the fixed sin-cos table.
/// </summary>
internal static class ModelInitializer
{
    public static void Initialize(SiTModel model, ulong seed)
    {
        var rng = new RandomSource(seed);
        foreach (var p in model.Parameters)
        {
            if (!p.Trainable) continue;
            string name = p.Name;
            var v = p.Value.Span;
            if (name.Contains("adaLN_modulation") || name.StartsWith("final_layer.linear"))
                v.Clear();
            else if (name == "y_embedder.embedding_table.weight" || (name.StartsWith("t_embedder.mlp") && name.EndsWith(".weight")))
                rng.FillGaussian(v, 0, 0.02f);
            else if (name.EndsWith("_bias"))
                rng.FillTruncatedGaussian(v, 0.02f);
            else if (name.EndsWith("dwc.weight") || name.EndsWith("dwc.bias"))
                rng.FillUniform(v, -1f / 3, 1f / 3);
            else if (name.EndsWith(".weight"))
                XavierUniform(p, rng);
            else if (name.EndsWith(".bias"))
                v.Clear();
            else
                throw new InvalidOperationException($"no initialisation rule for parameter '{name}'.");
        }
    }

    /// <summary>U(-a, a), a = sqrt(6 / (fan_in + fan_out)), with the weight viewed as (out, everything else).</summary>
    private static void XavierUniform(Parameter p, RandomSource rng)
    {
        int fanOut = p.Value.Dim(0), fanIn = p.Value.Length / fanOut;
        float a = MathF.Sqrt(6f / (fanIn + fanOut));
        rng.FillUniform(p.Value.Span, -a, a);
    }
}
