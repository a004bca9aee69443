namespace MediatorDiT.Sampling;

/// <summary>
/// Which ladder model served each sample at each network-evaluating step of a run, and the FLOPs each
/// sample actually cost: the sum over evaluations of the serving model's per-image FLOPs (guidance's
/// doubled batch included, see <see cref="ModelLadder.FlopsPerImage"/>).
/// </summary>
public sealed class ModelUsageLog
{
    private readonly List<int[]> _steps = [];
    private readonly double[] _flops;

    internal ModelUsageLog(int samples)
    {
        if (samples <= 0) throw new MediatorDiTException($"a usage log needs at least one sample, got {samples}.");
        _flops = new double[samples];
    }

    /// <summary>Samples of the run (one column of <see cref="ModelPerStep"/> each).</summary>
    public int SampleCount => _flops.Length;

    /// <summary>Logged steps (those that evaluated the network).</summary>
    public int StepCount => _steps.Count;

    /// <summary>Function evaluations: each is one network call, or one per model when samples are split.</summary>
    public int Evaluations { get; private set; }

    /// <summary>Calls made to ladder models (an evaluation with samples on two models makes two calls).</summary>
    public int NetworkCalls { get; private set; }

    /// <summary>ModelPerStep[step][sample]: the ladder index that served the sample in that step.</summary>
    public IReadOnlyList<IReadOnlyList<int>> ModelPerStep => _steps;

    /// <summary>The ladder index that served <paramref name="sample"/> in logged step <paramref name="step"/>.</summary>
    /// <param name="step">Logged step index in [0, StepCount).</param>
    /// <param name="sample">Sample index in [0, SampleCount).</param>
    public int ModelAt(int step, int sample) => _steps[step][sample];

    /// <summary>FLOPs spent on each sample.</summary>
    public IReadOnlyList<double> FlopsPerImage => _flops;

    /// <summary>The mean of <see cref="FlopsPerImage"/> over the samples.</summary>
    public double MeanFlopsPerImage => _flops.Average();

    /// <summary>Steps in which <paramref name="model"/> served <paramref name="sample"/>.</summary>
    public int StepsServedBy(int model, int sample) => _steps.Count(s => s[sample] == model);

    /// <summary>The first step in which <paramref name="model"/> served <paramref name="sample"/>, or -1.</summary>
    public int FirstStepOf(int model, int sample) => _steps.FindIndex(s => s[sample] == model);

    internal void BeginStep(int[] models)
    {
        if (models.Length != _flops.Length)
            throw new ArgumentException($"got {models.Length} models for {_flops.Length} samples.");
        _steps.Add((int[])models.Clone());
    }

    internal void AddEvaluation(ReadOnlySpan<int> models, IReadOnlyList<double> flopsPerImage)
    {
        Evaluations++;
        for (int s = 0; s < models.Length; s++) _flops[s] += flopsPerImage[models[s]];
        for (int m = 0; m < flopsPerImage.Count; m++)
            if (models.Contains(m)) NetworkCalls++;
    }
}
