using MediatorDiT.Nn;
using MediatorDiT.Tensors;

namespace MediatorDiT.Training;

/// <summary>
/// AdamW exactly as torch.optim.AdamW (single-tensor path): decoupled weight decay p *= 1 - lr*wd, moments
/// m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2, then p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
/// Scalars in float64 as Python computes them, tensors in float32. Like PyTorch, each parameter keeps its
/// own step count, and a step may update only the parameters that took part (a shared-weight ladder
/// trains one mediator count's biases at a time). Frozen parameters are never touched.
/// </summary>
public sealed class AdamW
{
    /// <summary>The learning rate of the next update; the trainer sets it each step (warm-up).</summary>
    public double LearningRate { get; set; }
    /// <summary>Decay of the first moment.</summary>
    public double Beta1 { get; }
    /// <summary>Decay of the second moment.</summary>
    public double Beta2 { get; }
    /// <summary>Added to the bias-corrected sqrt(v) in the denominator.</summary>
    public double Eps { get; }
    /// <summary>Decoupled weight decay: p *= 1 - lr * wd before the Adam step.</summary>
    public double WeightDecay { get; }

    private readonly Parameter[] _params;
    // Keyed by the value tensor: the members of a shared-weight ladder hold distinct Parameter objects over one tensor.
    private readonly Dictionary<Tensor, int> _index = new(ReferenceEqualityComparer.Instance);
    private readonly Tensor[] _m, _v;
    private readonly long[] _steps;

    /// <summary>
    /// Optimises the trainable ones among <paramref name="parameters"/>; parameters sharing one value tensor are
    /// optimised once. The moments start at zero.
    /// </summary>
    /// <param name="parameters">The parameters; frozen ones are skipped.</param>
    /// <param name="lr">The learning rate.</param>
    /// <param name="beta1">Decay of the first moment.</param>
    /// <param name="beta2">Decay of the second moment.</param>
    /// <param name="eps">Denominator term.</param>
    /// <param name="weightDecay">Decoupled weight decay.</param>
    public AdamW(IEnumerable<Parameter> parameters, double lr = 1e-4, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weightDecay = 0)
    {
        _params = parameters.Where(p => p.Trainable).DistinctBy(p => p.Value, ReferenceEqualityComparer.Instance).ToArray();
        for (int i = 0; i < _params.Length; i++) _index[_params[i].Value] = i;
        _m = _params.Select(p => new Tensor(p.Value.Shape)).ToArray();
        _v = _params.Select(p => new Tensor(p.Value.Shape)).ToArray();
        _steps = new long[_params.Length];
        LearningRate = lr;
        Beta1 = beta1;
        Beta2 = beta2;
        Eps = eps;
        WeightDecay = weightDecay;
    }

    /// <summary>Optimises the trainable parameters of <paramref name="model"/>.</summary>
    /// <param name="model">The network.</param>
    /// <param name="lr">The learning rate.</param>
    /// <param name="beta1">Decay of the first moment.</param>
    /// <param name="beta2">Decay of the second moment.</param>
    /// <param name="eps">Denominator term.</param>
    /// <param name="weightDecay">Decoupled weight decay.</param>
    public AdamW(IParameterSet model, double lr = 1e-4, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weightDecay = 0)
        : this(model.Parameters, lr, beta1, beta2, eps, weightDecay) { }

    /// <summary>The optimised parameters: trainable, one per value tensor, in construction order.</summary>
    public IReadOnlyList<Parameter> Parameters => _params;

    /// <summary>Per-parameter state, in construction order (for checkpoints).</summary>
    public IReadOnlyList<(Parameter Param, Tensor ExpAvg, Tensor ExpAvgSq, long Step)> State =>
        _params.Select((p, i) => (p, _m[i], _v[i], _steps[i])).ToArray();

    /// <summary>Sets the step count of <paramref name="p"/> (for its bias correction) when resuming from a checkpoint.</summary>
    /// <param name="p">An optimised parameter, or one sharing its value tensor.</param>
    /// <param name="step">Updates it has already taken.</param>
    /// <exception cref="KeyNotFoundException"><paramref name="p"/> is not optimised here.</exception>
    public void RestoreStep(Parameter p, long step) => _steps[_index[p.Value]] = step;

    /// <summary>Steps every parameter.</summary>
    public void Update() => UpdateIndices(Enumerable.Range(0, _params.Length).ToArray());

    /// <summary>Steps only the given parameters (those a shared-weight model used this step).</summary>
    public void Update(IEnumerable<Parameter> active) =>
        UpdateIndices(active.Where(p => p.Trainable).Select(p => _index[p.Value]).Distinct().ToArray());

    private void UpdateIndices(int[] indices)
    {
        ParallelLoop.For(indices.Length, j =>
        {
            int i = indices[j];
            AdamWKernel.Update(_params[i].Value.Span, _params[i].Grad!.Span, _m[i].Span, _v[i].Span, ScalarsAt(++_steps[i]));
        });
    }

    /// <summary>
    /// The element update's float scalars for a parameter's <paramref name="step"/>-th update (1 for the first) at the
    /// current learning rate: the bias corrections in double, as Python computes them (a device backend uses them too).
    /// </summary>
    internal AdamWScalars ScalarsAt(long step)
    {
        double bc1 = 1 - Math.Pow(Beta1, step), bc2 = 1 - Math.Pow(Beta2, step);
        return new AdamWScalars((float)(1 - LearningRate * WeightDecay), WeightDecay != 0, (float)Beta1, (float)Beta2, (float)(1 - Beta1),
            (float)(1 - Beta2), (float)Math.Sqrt(bc2), (float)Eps, (float)(LearningRate / bc1));
    }
}
