using MediatorDiT.Models;
using MediatorDiT.Tensors;

namespace MediatorDiT.Evaluation;

/// <summary>
/// Hands every block's attention input (B*N, D) to a callback during a model's forward passes, until
/// disposed. For analysis; the forward computation itself is unchanged.
/// </summary>
internal sealed class AttentionObserver : IDisposable
{
    private readonly SiTModel _model;

    private AttentionObserver(SiTModel model, Action<int, Tensor, int> onInput)
    {
        _model = model;
        for (int i = 0; i < model.Blocks.Count; i++)
        {
            int layer = i;
            if (model.Blocks[i].AttentionInputObserver is not null)
                throw new InvalidOperationException($"block {i} is already observed.");
            model.Blocks[i].AttentionInputObserver = (input, batch) => onInput(layer, input, batch);
        }
    }

    /// <summary>Calls onInput(layer, attention input, batch) in every block's forward.</summary>
    public static AttentionObserver Attach(SiTModel model, Action<int, Tensor, int> onInput)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(onInput);
        return new AttentionObserver(model, onInput);
    }

    /// <summary>Detaches the callback from every block.</summary>
    public void Dispose()
    {
        foreach (var block in _model.Blocks) block.AttentionInputObserver = null;
    }
}
