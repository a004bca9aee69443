using MediatorDiT.Nn;

namespace MediatorDiT.Training;

/// <summary>
/// Exponential moving average of the weights as DiT's update_ema: ema = decay * ema + (1 - decay) * param,
/// over every parameter (frozen ones are copied unchanged, as they never change).
/// </summary>
public static class Ema
{
    /// <summary>ema = decay * ema + (1 - decay) * model, parameter by parameter in list order.</summary>
    /// <param name="ema">The averaged network, updated in place.</param>
    /// <param name="model">The trained network; its parameter list must match <paramref name="ema"/>'s.</param>
    /// <param name="decay">The decay, in [0, 1).</param>
    /// <exception cref="ArgumentException">The parameter lists differ in length.</exception>
    public static void Update(IParameterSet ema, IParameterSet model, double decay)
    {
        var src = model.Parameters;
        var dst = ema.Parameters;
        if (src.Count != dst.Count) throw new ArgumentException("EMA and model have different parameter lists.");
        float d = (float)decay, oneMinus = (float)(1 - decay);
        for (int i = 0; i < src.Count; i++)
        {
            var p = src[i].Value.Span;
            var e = dst[i].Value.Span;
            for (int k = 0; k < p.Length; k++) e[k] = e[k] * d + p[k] * oneMinus;
        }
    }

    /// <summary>Copies every weight of <paramref name="from"/> into <paramref name="to"/> (the EMA's start).</summary>
    /// <param name="from">The source network.</param>
    /// <param name="to">The destination, with the same parameter list.</param>
    public static void CopyWeights(IParameterSet from, IParameterSet to)
    {
        for (int i = 0; i < from.Parameters.Count; i++) to.Parameters[i].Value.CopyFrom(from.Parameters[i].Value);
    }
}
