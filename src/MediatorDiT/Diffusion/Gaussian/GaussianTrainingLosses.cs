using MediatorDiT.Tensors;

namespace MediatorDiT.Diffusion;

/// <summary>
/// training_losses per sample (B): Loss = Mse + Vb; Vb is null for fixed variances. OutputGradient, when
/// asked for, is d(mean over the batch of Loss) / d(network output) (B, 2C, H, W) with the stop-gradient
/// of the official code: the variational bound term reaches only the variance channels.
/// </summary>
public sealed record GaussianTrainingLosses(float[] Loss, float[] Mse, float[]? Vb, Tensor? OutputGradient)
{
    /// <summary>The batch mean of Loss (what DiT's training step minimises).</summary>
    public double MeanLoss => Loss.Length == 0 ? 0 : Loss.Average(v => (double)v);
}
