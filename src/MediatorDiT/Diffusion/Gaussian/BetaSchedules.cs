namespace MediatorDiT.Diffusion;

/// <summary>
/// DiT's named beta schedules, in float64 like the official numpy code: "linear" (Ho et al., scaled by
/// 1000 / T so any step count spans the same range, betas 0.0001 .. 0.02 at T = 1000) and
/// "squaredcos_cap_v2" (Nichol and Dhariwal's cosine alpha-bar, betas capped at 0.999).
/// </summary>
public static class BetaSchedules
{
    /// <summary>The name of Ho et al.'s linear schedule.</summary>
    public const string Linear = "linear";
    /// <summary>The name of Nichol and Dhariwal's cosine schedule.</summary>
    public const string Cosine = "squaredcos_cap_v2";

    /// <summary>The betas (length <paramref name="steps"/>) of the schedule called <paramref name="name"/>.</summary>
    /// <param name="name"><see cref="Linear"/> or <see cref="Cosine"/>.</param>
    /// <param name="steps">T, the number of diffusion steps.</param>
    /// <exception cref="MediatorDiTException"><paramref name="steps"/> is not positive or the name is unknown.</exception>
    public static double[] Named(string name, int steps)
    {
        if (steps <= 0) throw new MediatorDiTException($"the number of diffusion steps must be positive, got {steps}.");
        return name switch
        {
            Linear => LinearBetas(steps),
            Cosine => FromAlphaBar(steps, t => Math.Pow(Math.Cos((t + 0.008) / 1.008 * Math.PI / 2), 2)),
            _ => throw new MediatorDiTException($"unknown noise schedule '{name}'; expected '{Linear}' or '{Cosine}'."),
        };
    }

    /// <summary>numpy.linspace(scale * 1e-4, scale * 0.02, T) with scale = 1000 / T.</summary>
    public static double[] LinearBetas(int steps)
    {
        double scale = 1000.0 / steps;
        return Linspace(scale * 0.0001, scale * 0.02, steps);
    }

    /// <summary>beta_i = min(1 - alphaBar((i+1)/T) / alphaBar(i/T), maxBeta).</summary>
    public static double[] FromAlphaBar(int steps, Func<double, double> alphaBar, double maxBeta = 0.999)
    {
        var betas = new double[steps];
        for (int i = 0; i < steps; i++)
        {
            double t1 = (double)i / steps, t2 = (double)(i + 1) / steps;
            betas[i] = Math.Min(1 - alphaBar(t2) / alphaBar(t1), maxBeta);
        }
        return betas;
    }

    /// <summary>numpy.linspace with the endpoint: start + i * step, the last value set to stop exactly.</summary>
    internal static double[] Linspace(double start, double stop, int count)
    {
        var values = new double[count];
        if (count == 1)
        {
            values[0] = start;
            return values;
        }
        double step = (stop - start) / (count - 1);
        for (int i = 0; i < count; i++) values[i] = i * step + start;
        values[^1] = stop;
        return values;
    }
}
