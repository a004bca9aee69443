using MediatorDiT.Tensors;

namespace MediatorDiT.Evaluation;

/// <summary>
/// One batch of the fixed seed set every schedule of a sweep is run on: sample indices, labels, initial
/// noise z (B, C, H, W) and the SDE's per-step draws (draws, rows, C, H, W), rows = B x rows per sample.
/// </summary>
internal sealed record SeedBatch(int[] Indices, int[] Labels, Tensor Z, Tensor? Draws);
