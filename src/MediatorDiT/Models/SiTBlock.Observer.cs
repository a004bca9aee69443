using MediatorDiT.Tensors;

namespace MediatorDiT.Models;

internal sealed partial class SiTBlock
{
    /// <summary>
    /// For analysis: when set, Forward hands it the attention module's input (B*N, D) and the batch size
    /// before running the attention. The tensor is only valid during the call.
    /// </summary>
    public Action<Tensor, int>? AttentionInputObserver { get; set; }
}
