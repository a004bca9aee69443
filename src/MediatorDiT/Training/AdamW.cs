using MediatorDiT.Nn;
using MediatorDiT.Tensors;

namespace MediatorDiT.Training;

/// <summary>
/// AdamW exactly as torch.optim.AdamW (single-tensor path): decoupled weight decay p *= 1 - lr*wd, moments
/// m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2, then p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
/// Scalars in float64 as Python computes them, tensors in float32. Frozen parameters are skipped.
/// </summary>
public sealed class AdamW
{
    public double LearningRate { get; set; }
    public double Beta1 { get; }
    public double Beta2 { get; }
    public double Eps { get; }
    public double WeightDecay { get; }
    public long Step { get; private set; }

    private readonly IReadOnlyList<Parameter> _params;
    private readonly Tensor[] _m, _v;

    public AdamW(IParameterSet model, double lr = 1e-4, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weightDecay = 0)
    {
        _params = model.Parameters.Where(p => p.Trainable).ToArray();
        _m = _params.Select(p => new Tensor(p.Value.Shape)).ToArray();
        _v = _params.Select(p => new Tensor(p.Value.Shape)).ToArray();
        LearningRate = lr;
        Beta1 = beta1;
        Beta2 = beta2;
        Eps = eps;
        WeightDecay = weightDecay;
    }

    /// <summary>The moments, in the order of the model's trainable parameters (for checkpoints).</summary>
    public IReadOnlyList<(Parameter Param, Tensor ExpAvg, Tensor ExpAvgSq)> State =>
        _params.Select((p, i) => (p, _m[i], _v[i])).ToArray();

    public void RestoreStep(long step) => Step = step;

    public void Update()
    {
        Step++;
        float decay = (float)(1 - LearningRate * WeightDecay);
        float b1 = (float)Beta1, b2 = (float)Beta2, oneMinusB1 = (float)(1 - Beta1), oneMinusB2 = (float)(1 - Beta2);
        double bc1 = 1 - Math.Pow(Beta1, Step), bc2 = 1 - Math.Pow(Beta2, Step);
        float stepSize = (float)(LearningRate / bc1);
        float bc2Sqrt = (float)Math.Sqrt(bc2);
        float eps = (float)Eps;
        ParallelLoop.For(_params.Count, i =>
        {
            var p = _params[i].Value.Span;
            var g = _params[i].Grad!.Span;
            var m = _m[i].Span;
            var v = _v[i].Span;
            for (int k = 0; k < p.Length; k++)
            {
                if (WeightDecay != 0) p[k] *= decay;
                m[k] = m[k] * b1 + g[k] * oneMinusB1;
                v[k] = v[k] * b2 + g[k] * g[k] * oneMinusB2;
                float denom = MathF.Sqrt(v[k]) / bc2Sqrt + eps;
                p[k] += -stepSize * (m[k] / denom);
            }
        });
    }
}
