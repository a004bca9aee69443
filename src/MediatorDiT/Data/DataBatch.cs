using MediatorDiT.Tensors;

namespace MediatorDiT.Data;

/// <summary>
/// One batch: samples (B, C, H, W) and labels (B). <see cref="Step"/> is the global batch number,
/// <see cref="Epoch"/> and <see cref="IndexInEpoch"/> where it falls; <see cref="SampleIndices"/>
/// names the dataset samples it holds and <see cref="Flipped"/> which of them were mirrored.
/// </summary>
public sealed record DataBatch(Tensor Images, int[] Labels, long Step, long Epoch, int IndexInEpoch, int[] SampleIndices, bool[] Flipped)
{
    /// <summary>B, the samples in the batch.</summary>
    public int Size => Labels.Length;
}
