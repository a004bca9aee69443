using MediatorDiT.Tensors;

namespace MediatorDiT.Diffusion;

/// <summary>One reverse step: the sample x_{t-1} and the network's x_0 prediction, both (B, C, H, W).</summary>
public sealed record GaussianStep(Tensor Sample, Tensor PredXStart);
