namespace MediatorDiT.Diffusion;

/// <summary>What the network predicts at (x_t, t).</summary>
public enum PredictionType
{
    /// <summary>The velocity d x_t / dt (SiT's default).</summary>
    Velocity,

    /// <summary>The score grad log p_t(x_t).</summary>
    Score,

    /// <summary>The noise x0 that produced x_t.</summary>
    Noise,
}
