using MediatorDiT.Diffusion;
using MediatorDiT.Tensors;

namespace MediatorDiT.Sampling;

/// <summary>
/// SiT's SDE sampler: Euler-Maruyama or stochastic Heun on linspace(t0, t1, NumSteps) with
/// dx = [drift + w_t score] dt + sqrt(2 w_t) dW, then the last step to the data. The official code calls
/// the network twice per drift evaluation (once for the drift, once for the score, on the same input);
/// here both come from one prediction, so Euler-Maruyama makes one network call per step.
/// </summary>
public sealed class SdeSampler : ISampler
{
    private readonly float[] _grid;

    /// <summary>The transport whose SDE is integrated.</summary>
    public Transport Transport { get; }
    /// <summary>The validated settings.</summary>
    public SdeSamplerOptions Options { get; }

    /// <summary>The grid's start and end (from <see cref="Transport.CheckInterval"/>).</summary>
    public double T0 { get; }
    /// <summary>The grid's end: 1 - last step size, or 1 - eps without a last step.</summary>
    public double T1 { get; }

    /// <summary>The float32 time grid, NumSteps points from T0 to T1.</summary>
    public IReadOnlyList<float> Times => _grid;

    /// <summary>Steps that evaluate the network: the grid steps and, unless <see cref="LastStep.None"/>, the last step.</summary>
    public int StepCount => Options.NumSteps - 1 + (Options.LastStep == LastStep.None ? 0 : 1);

    /// <summary>One draw per grid step; the last step adds no noise.</summary>
    public int DrawCount => Options.NumSteps - 1;

    /// <inheritdoc/>
    public string Description => $"sde {Options.Method.ToString().ToLowerInvariant()} {Options.NumSteps}";

    /// <summary>Network evaluations of one run.</summary>
    public int EvaluationsPerRun =>
        (Options.NumSteps - 1) * (Options.Method == SdeMethod.Heun ? 2 : 1) + (Options.LastStep == LastStep.None ? 0 : 1);

    /// <summary>An SDE sampler for <paramref name="transport"/>.</summary>
    /// <param name="transport">The transport the models were trained with.</param>
    /// <param name="options">The settings; null takes the defaults of SiT's sampling scripts.</param>
    /// <exception cref="MediatorDiTException">A setting is invalid, the time interval is empty, or w_t is not finite on the grid.</exception>
    public SdeSampler(Transport transport, SdeSamplerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(transport);
        Options = (options ?? new SdeSamplerOptions()).Validate();
        Transport = transport;
        double lastStepSize = Options.LastStep == LastStep.None ? 0 : Options.LastStepSize;
        (T0, T1) = transport.CheckInterval(transport.TrainEps, transport.SampleEps, Options.DiffusionForm,
            sde: true, reverse: false, eval: true, lastStepSize: lastStepSize);
        if (!(T0 < T1))
            throw new MediatorDiTException($"the SDE time interval [{T0}, {T1}] is empty; use a smaller last step size or sample_eps.");
        _grid = TimeGrid.Linspace(T0, T1, Options.NumSteps);
        foreach (float t in _grid)
        {
            float w = transport.Path.DiffusionAt(t, Options.DiffusionForm, Options.DiffusionNorm);
            if (!float.IsFinite(w))
                throw new MediatorDiTException(
                    $"the {Options.DiffusionForm} diffusion is {w} at t = {t} on the {transport.PathType} path; start later with sample_eps > 0 or pick another diffusion form.");
        }
    }

    /// <summary>
    /// Samples from initial noise z (B, C, H, W) with labels y (B). Under guidance the state is the
    /// official doubled batch and <paramref name="noise"/> draws for all of it. A ladder of several
    /// models needs a <paramref name="schedule"/>. Everything is validated before the first network call.
    /// </summary>
    public SamplingResult Sample(ModelLadder ladder, Tensor z, ReadOnlySpan<int> y, INoiseSource noise,
        IModelSchedule? schedule = null, bool recordTrajectory = false,
        IProgress<SamplingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(noise);
        var run = new LadderRun(ladder, z, y, schedule, StepCount, progress, cancellationToken);
        var x = run.InitialState;
        noise.Prepare(x.Shape, DrawCount);

        var trajectory = new List<Tensor>();
        var w = new Tensor(x.Shape);
        var next = new Tensor(x.Shape);
        var k1 = new Tensor(x.Shape);
        var k2 = new Tensor(x.Shape);
        var xHat = new Tensor(x.Shape);
        var xPredicted = new Tensor(x.Shape);
        float dt = _grid[1] - _grid[0];
        float sqrtDt = MathF.Sqrt(dt);
        var path = Transport.Path;

        for (int i = 0; i < Options.NumSteps - 1; i++)
        {
            run.BeginStep();
            noise.Next(w.Span);
            float t = _grid[i];
            float g = path.DiffusionAt(t, Options.DiffusionForm, Options.DiffusionNorm);
            float noiseScale = MathF.Sqrt(2 * g);
            var xs = x.Span;
            var ws = w.Span;
            var ns = next.Span;
            if (Options.Method == SdeMethod.Euler)
            {
                var prediction = run.Evaluate(x, t);
                Transport.SdeDriftInto(prediction.Span, xs, t, g, k1.Span);
                var drift = k1.Span;
                for (int e = 0; e < ns.Length; e++)
                {
                    float mean = xs[e] + drift[e] * dt;
                    ns[e] = mean + noiseScale * (ws[e] * sqrtDt);
                }
            }
            else
            {
                // Noise first (x_hat), then a trapezoidal drift step from x_hat.
                var hs = xHat.Span;
                for (int e = 0; e < hs.Length; e++) hs[e] = xs[e] + noiseScale * (ws[e] * sqrtDt);
                Transport.SdeDriftInto(run.Evaluate(xHat, t).Span, hs, t, g, k1.Span);
                var ps = xPredicted.Span;
                var a = k1.Span;
                for (int e = 0; e < ps.Length; e++) ps[e] = hs[e] + dt * a[e];
                float t2 = t + dt;
                float g2 = path.DiffusionAt(t2, Options.DiffusionForm, Options.DiffusionNorm);
                Transport.SdeDriftInto(run.Evaluate(xPredicted, t2).Span, ps, t2, g2, k2.Span);
                var b = k2.Span;
                float half = 0.5f * dt;
                for (int e = 0; e < ns.Length; e++) ns[e] = hs[e] + half * (a[e] + b[e]);
            }
            run.EndStep(i, x, next);
            if (recordTrajectory) trajectory.Add(next.Clone());
            (x, next) = (next, x);
        }

        var final = LastStepFrom(run, x, k1);
        if (recordTrajectory) trajectory.Add(final.Clone());
        return new SamplingResult(run.SamplesOf(final), trajectory, run.Log);
    }

    /// <summary>SiT's last step at t1 (one evaluation, none for <see cref="LastStep.None"/>).</summary>
    private Tensor LastStepFrom(LadderRun run, Tensor x, Tensor scratch)
    {
        if (Options.LastStep == LastStep.None) return x.Clone();
        int step = Options.NumSteps - 1;
        run.BeginStep();
        float t = (float)T1;
        var prediction = run.Evaluate(x, t);
        var result = new Tensor(x.Shape);
        var xs = x.Span;
        var rs = result.Span;
        var d = scratch.Span;
        switch (Options.LastStep)
        {
            case LastStep.Mean:
            case LastStep.Euler:
            {
                float g = Options.LastStep == LastStep.Mean
                    ? Transport.Path.DiffusionAt(t, Options.DiffusionForm, Options.DiffusionNorm)
                    : 0;
                Transport.SdeDriftInto(prediction.Span, xs, t, g, d);
                float size = (float)Options.LastStepSize;
                for (int e = 0; e < rs.Length; e++) rs[e] = xs[e] + d[e] * size;
                break;
            }
            default:
            {
                Transport.ScoreInto(prediction.Span, xs, t, d);
                float alpha = Transport.Path.AlphaAt(t).Alpha;
                float sigma = Transport.Path.SigmaAt(t).Sigma;
                float scoreScale = sigma * sigma / alpha;
                for (int e = 0; e < rs.Length; e++) rs[e] = xs[e] / alpha + scoreScale * d[e];
                break;
            }
        }
        run.EndStep(step, x, result);
        return result;
    }
}
