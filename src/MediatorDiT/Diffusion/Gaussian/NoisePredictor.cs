using MediatorDiT.Tensors;

namespace MediatorDiT.Diffusion;

/// <summary>
/// The network as the Gaussian diffusion calls it: x_t (B, C, H, W) and the original-process timesteps
/// (B) (a respaced process maps its indices first, as DiT's _WrappedModel does) -> (B, 2C, H, W) with
/// the epsilon (or x_0) prediction first and the variance values second for learned variances, or
/// (B, C, H, W) for fixed ones. The returned tensor is read before the next call.
/// </summary>
public delegate Tensor NoisePredictor(Tensor x, int[] timesteps);
