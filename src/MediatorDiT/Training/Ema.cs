using MediatorDiT.Nn;

namespace MediatorDiT.Training;

/// <summary>
/// Exponential moving average of the weights as DiT's update_ema: ema = decay * ema + (1 - decay) * param,
/// over every parameter (frozen ones are copied unchanged, as they never change).
/// </summary>
public static class Ema
{
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

    public static void CopyWeights(IParameterSet from, IParameterSet to)
    {
        for (int i = 0; i < from.Parameters.Count; i++) to.Parameters[i].Value.CopyFrom(from.Parameters[i].Value);
    }
}
