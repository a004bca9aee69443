using MediatorDiT.Diffusion;
using MediatorDiT.Tensors;

namespace MediatorDiT.Sampling;

/// <summary>
/// SiT's ODE sampler: integrates the probability-flow ODE dx/dt = drift(x, t) from noise at t0 to data at
/// t1 over linspace(t0, t1, NumSteps), with Euler, Heun, or adaptive Dormand-Prince. A model schedule
/// decides at the grid points, as the SDE sampler does after each step.
/// </summary>
public sealed class OdeSampler : ISampler
{
    private readonly float[] _grid;

    /// <summary>The transport whose probability-flow ODE is integrated.</summary>
    public Transport Transport { get; }
    /// <summary>The validated settings.</summary>
    public OdeSamplerOptions Options { get; }
    /// <summary>The grid's start, near the noise end (from <see cref="Transport.CheckInterval"/>).</summary>
    public double T0 { get; }
    /// <summary>The grid's end, near the data end.</summary>
    public double T1 { get; }

    /// <summary>The float32 time grid, NumSteps points from T0 to T1.</summary>
    public IReadOnlyList<float> Times => _grid;

    /// <summary>Steps (grid intervals), each served by one model per sample.</summary>
    public int StepCount => Options.NumSteps - 1;

    /// <summary>An ODE sampler for <paramref name="transport"/>.</summary>
    /// <param name="transport">The transport the models were trained with.</param>
    /// <param name="options">The settings; null takes SiT's defaults.</param>
    /// <exception cref="MediatorDiTException">A setting is invalid or the time interval is empty.</exception>
    public OdeSampler(Transport transport, OdeSamplerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(transport);
        Options = (options ?? new OdeSamplerOptions()).Validate();
        Transport = transport;
        (T0, T1) = transport.CheckInterval(transport.TrainEps, transport.SampleEps, sde: false, reverse: false, eval: true, lastStepSize: 0);
        if (!(T0 < T1))
            throw new MediatorDiTException($"the ODE time interval [{T0}, {T1}] is empty; use a smaller sample_eps.");
        _grid = TimeGrid.Linspace(T0, T1, Options.NumSteps);
    }

    /// <summary>Draws taken from a noise source: none, the ODE is deterministic after z.</summary>
    public int DrawCount => 0;

    /// <inheritdoc/>
    public string Description => $"ode {Options.Method.ToString().ToLowerInvariant()} {Options.NumSteps}";

    /// <summary>As the overload without noise: the ODE takes no draws, so <paramref name="noise"/> is not used.</summary>
    public SamplingResult Sample(ModelLadder ladder, Tensor z, ReadOnlySpan<int> y, INoiseSource noise, IModelSchedule? schedule = null,
        bool recordTrajectory = false, IProgress<SamplingProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Sample(ladder, z, y, schedule, recordTrajectory, progress, cancellationToken);

    /// <summary>
    /// Samples from initial noise z (B, C, H, W) with labels y (B); the trajectory holds the state at each
    /// grid point after t0. A ladder of several models needs a <paramref name="schedule"/>.
    /// </summary>
    public SamplingResult Sample(ModelLadder ladder, Tensor z, ReadOnlySpan<int> y, IModelSchedule? schedule = null,
        bool recordTrajectory = false, IProgress<SamplingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var run = new LadderRun(ladder, z, y, schedule, StepCount, progress, cancellationToken);
        var x = run.InitialState;
        var trajectory = new List<Tensor>();

        Tensor Drift(Tensor state, double t)
        {
            float time = (float)t;
            var prediction = run.Evaluate(state, time);
            if (Transport.Prediction == PredictionType.Velocity) return prediction;
            var drift = new Tensor(state.Shape);
            Transport.SdeDriftInto(prediction.Span, state.Span, time, 0, drift.Span);
            return drift;
        }

        var dopri = Options.Method == OdeMethod.Dopri5
            ? new DormandPrinceIntegrator(Drift, Options.Atol, Options.Rtol, Options.MaxEvaluations)
            : null;
        for (int i = 0; i < StepCount; i++)
        {
            bool modelsChanged = run.BeginStep();
            float t = _grid[i], tNext = _grid[i + 1], dt = tNext - t;
            Tensor next;
            switch (Options.Method)
            {
                case OdeMethod.Euler:
                    next = Axpy(x, dt, Drift(x, t));
                    break;
                case OdeMethod.Heun:
                {
                    var k1 = Drift(x, t);
                    var k2 = Drift(Axpy(x, dt, k1), tNext);
                    next = new Tensor(x.Shape);
                    var xs = x.Span;
                    var a = k1.Span;
                    var b = k2.Span;
                    var ns = next.Span;
                    for (int e = 0; e < ns.Length; e++) ns[e] = xs[e] + dt * (0.5f * a[e] + 0.5f * b[e]);
                    break;
                }
                default:
                    if (modelsChanged) dopri!.Invalidate();
                    next = dopri!.Advance(x, t, tNext);
                    break;
            }
            run.EndStep(i, x, next);
            if (recordTrajectory) trajectory.Add(next.Clone());
            x = next;
        }
        return new SamplingResult(run.SamplesOf(x), trajectory, run.Log);
    }

    /// <summary>x + a * d, a new tensor.</summary>
    private static Tensor Axpy(Tensor x, float a, Tensor d)
    {
        var result = new Tensor(x.Shape);
        var xs = x.Span;
        var ds = d.Span;
        var rs = result.Span;
        for (int e = 0; e < rs.Length; e++) rs[e] = xs[e] + a * ds[e];
        return result;
    }
}
