namespace MediatorDiT.Diffusion;

/// <summary>What the network's first C output channels predict (DiT: epsilon).</summary>
public enum GaussianMeanType
{
    /// <summary>The noise that was added (DiT's default).</summary>
    Epsilon,
    /// <summary>The clean sample x_0 (create_diffusion's predict_xstart).</summary>
    StartX,
}
