using MediatorDiT.Tensors;

namespace MediatorDiT.Diffusion;

/// <summary>p(x_{t-1} | x_t) as the network predicts it (p_mean_variance): each (B, C, H, W).</summary>
public sealed record GaussianModelMoments(Tensor Mean, Tensor Variance, Tensor LogVariance, Tensor PredXStart);
