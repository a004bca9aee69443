namespace MediatorDiT.Sampling;

/// <summary>How the adaptive schedule measures the change between consecutive states.</summary>
public enum StateDistance
{
    /// <summary>Mean absolute difference (the official "mae", PyTorch's l1_loss).</summary>
    MeanAbsolute,

    /// <summary>Mean squared difference (the official "mse", PyTorch's mse_loss).</summary>
    MeanSquared,
}
