using MediatorDiT.IO;
using MediatorDiT.Nn;
using MediatorDiT.Tensors;

namespace MediatorDiT.Models;

/// <summary>
/// Resolution fine-tuning as the authors do it: a state dict trained on one token grid is carried to
/// another by resizing the row/column position biases (ah/aw: (1, H, n, L, 1)/(1, H, n, 1, L);
/// ha/wa: (1, H, L, 1, n)/(1, H, 1, L, n)) along L with linear interpolation, align_corners=True,
/// regenerating the fixed sin-cos pos_embed, and keeping everything else (the 7x7 biases included).
/// </summary>
public static class ResolutionResize
{
    public static Dictionary<string, StoredTensor> Interpolate(IReadOnlyDictionary<string, StoredTensor> state, ModelConfig target)
    {
        int grid = target.GridSize;
        var result = new Dictionary<string, StoredTensor>();
        foreach (var (key, stored) in state)
        {
            if (key == "pos_embed")
            {
                var pos = new Tensor(1, target.NumTokens, target.HiddenSize);
                PositionalEmbedding.Fill2DSinCos(pos.Span, target.HiddenSize, grid);
                result[key] = StoredTensor.FromFloat(pos);
            }
            else if (key.EndsWith("attn.ah_bias") || key.EndsWith("attn.aw_bias"))
            {
                // (1, H, n, L, 1) and (1, H, n, 1, L) are both (H*n planes, L) in memory.
                var s = stored.Shape;
                int heads = s[1], n = s[2], length = key.EndsWith("ah_bias") ? s[3] : s[4];
                int[] shape = key.EndsWith("ah_bias") ? [1, heads, n, grid, 1] : [1, heads, n, 1, grid];
                var resized = new Tensor(shape);
                LinearResize.Forward(stored.ToFloat().Span, resized.Span, heads * n, length, grid);
                result[key] = StoredTensor.FromFloat(resized);
            }
            else if (key.EndsWith("attn.ha_bias") || key.EndsWith("attn.wa_bias"))
            {
                // (1, H, L, 1, n) and (1, H, 1, L, n) are (H, L, n): move L last, resize, move it back.
                var s = stored.Shape;
                int heads = s[1], n = s[4], length = key.EndsWith("ha_bias") ? s[2] : s[3];
                var src = stored.ToFloat().Span;
                var planes = new float[heads * n * length];
                for (int h = 0; h < heads; h++)
                for (int l = 0; l < length; l++)
                for (int m = 0; m < n; m++)
                    planes[(h * n + m) * length + l] = src[(h * length + l) * n + m];
                var resizedPlanes = new float[heads * n * grid];
                LinearResize.Forward(planes, resizedPlanes, heads * n, length, grid);
                int[] shape = key.EndsWith("ha_bias") ? [1, heads, grid, 1, n] : [1, heads, 1, grid, n];
                var resized = new Tensor(shape);
                var dst = resized.Span;
                for (int h = 0; h < heads; h++)
                for (int l = 0; l < grid; l++)
                for (int m = 0; m < n; m++)
                    dst[(h * grid + l) * n + m] = resizedPlanes[(h * n + m) * grid + l];
                result[key] = StoredTensor.FromFloat(resized);
            }
            else
            {
                result[key] = stored;
            }
        }
        return result;
    }
}
