using MediatorDiT.Tensors;

namespace MediatorDiT.Diffusion;

/// <summary>q(x_{t-1} | x_t, x_0): mean, variance and clipped log variance, each (B, C, H, W).</summary>
public sealed record GaussianPosterior(Tensor Mean, Tensor Variance, Tensor LogVariance);
