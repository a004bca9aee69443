using MediatorDiT.IO;
using MediatorDiT.Tensors;

namespace MediatorDiT.Models;

/// <summary>
/// Resolution fine-tuning as the authors do it: a state dict trained on one token grid is carried to
/// another by regenerating the fixed sin-cos pos_embed and letting each attention kind resize its
/// grid-sized weights (<see cref="AttentionSpec"/>; mediator attention resizes its row/column position
/// biases along the grid with linear interpolation, align_corners=True), keeping everything else (the 7x7
/// mediator biases included).
/// </summary>
internal static class ResolutionResize
{
    /// <summary><paramref name="state"/> carried to <paramref name="target"/>'s token grid; tensors nothing resizes are the same objects.</summary>
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
                continue;
            }
            StoredTensor? resized = null;
            foreach (var kind in AttentionKinds.All)
                if ((resized = kind.ResizeToGrid(key, stored, grid)) is not null) break;
            result[key] = resized ?? stored;
        }
        return result;
    }
}
