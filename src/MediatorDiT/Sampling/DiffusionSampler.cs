using System.Globalization;
using MediatorDiT.Diffusion;
using MediatorDiT.Models;
using MediatorDiT.Tensors;

namespace MediatorDiT.Sampling;

/// <summary>
/// DiT's sampling as its sample.py runs it, over every step of a respaced <see cref="GaussianDiffusion"/>:
/// ancestral (p_sample_loop) or DDIM with <see cref="Eta"/>. Under guidance the starting noise is duplicated,
/// the second half labelled with the null class, the network called through forward_with_cfg, and the
/// conditional half returned; no clipping of x_0 predictions. The ladder holds one DiT model.
/// </summary>
public sealed class DiffusionSampler : ISampler
{
    /// <summary>The respaced process whose every step is sampled.</summary>
    public GaussianDiffusion Diffusion { get; }

    /// <summary>DDIM instead of ancestral sampling.</summary>
    public bool Ddim { get; }

    /// <summary>DDIM's eta (0: deterministic after z).</summary>
    public float Eta { get; }

    /// <summary>Samples over every step of <paramref name="diffusion"/>.</summary>
    /// <param name="diffusion">The (respaced) process, e.g. from <see cref="GaussianDiffusion.Create"/>.</param>
    /// <param name="ddim">DDIM instead of ancestral sampling.</param>
    /// <param name="eta">DDIM's eta, finite and at least 0.</param>
    /// <exception cref="MediatorDiTException"><paramref name="eta"/> is negative or not finite.</exception>
    public DiffusionSampler(GaussianDiffusion diffusion, bool ddim = false, float eta = 0f)
    {
        ArgumentNullException.ThrowIfNull(diffusion);
        if (!(eta >= 0) || float.IsInfinity(eta)) throw new MediatorDiTException($"DDIM eta must be a finite number >= 0, got {eta}.");
        Diffusion = diffusion;
        Ddim = ddim;
        Eta = eta;
    }

    /// <summary>Ancestral sampling over <paramref name="steps"/> respaced steps (1..1000) of DiT's linear schedule.</summary>
    public static DiffusionSampler Ancestral(int steps, bool learnSigma) =>
        new(GaussianDiffusion.Create(CheckSteps(steps, "ancestral").ToString(CultureInfo.InvariantCulture), learnSigma: learnSigma));

    /// <summary>DDIM over <paramref name="steps"/> respaced steps (1..1000) with <paramref name="eta"/>.</summary>
    public static DiffusionSampler DdimSteps(int steps, float eta, bool learnSigma) =>
        new(GaussianDiffusion.Create($"ddim{CheckSteps(steps, "DDIM")}", learnSigma: learnSigma), ddim: true, eta);

    private static int CheckSteps(int steps, string kind) => steps is >= 1 and <= 1000 ? steps
        : throw new MediatorDiTException($"{kind} sampling takes 1..1000 diffusion steps, got {steps}.");

    /// <inheritdoc/>
    public int StepCount => Diffusion.NumTimesteps;

    /// <summary>One draw per step: p_sample and ddim_sample both call randn_like (DDIM with eta 0 ignores it).</summary>
    public int DrawCount => Diffusion.NumTimesteps;

    /// <inheritdoc/>
    public string Description => Ddim
        ? string.Create(CultureInfo.InvariantCulture, $"ddim{Diffusion.NumTimesteps} eta {Eta}")
        : string.Create(CultureInfo.InvariantCulture, $"ancestral {Diffusion.NumTimesteps}");

    /// <inheritdoc/>
    /// <remarks>The ladder must hold exactly one DiT model; a schedule, if given, must keep it.</remarks>
    public SamplingResult Sample(ModelLadder ladder, Tensor z, ReadOnlySpan<int> y, INoiseSource noise, IModelSchedule? schedule = null,
        bool recordTrajectory = false, IProgress<SamplingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ladder);
        ArgumentNullException.ThrowIfNull(noise);
        if (ladder.Count != 1 || ladder.Models is not { } models || models[0].Config.Family != ModelFamily.DiT)
            throw new MediatorDiTException(
                "DiT's Gaussian diffusion samples one DiT model; a mediator ladder (or a SiT model) is sampled with SiT's transport (SDE or ODE).");
        var model = models[0];
        ladder.ValidateInitialNoise(z, y.Length);
        int batch = z.Dim(0), per = z.Length / batch, numClasses = model.Config.NumClasses;
        int[] classes = y.ToArray();
        foreach (int c in classes)
            if ((uint)c >= (uint)numClasses)
                throw new MediatorDiTException($"class label {c} is outside the model's 0..{numClasses - 1}.");
        _ = (schedule ?? FixedModelSchedule.Only(0)).Start(new ScheduleContext(1, new BatchLayout(batch, ladder.RowsPerSample), StepCount));

        bool guided = ladder.RowsPerSample == 2;
        Tensor start = z;
        NoisePredictor predictor;
        if (guided)
        {
            var shape = (int[])z.Shape.Clone();
            shape[0] = 2 * batch;
            start = new Tensor(shape);
            z.Span.CopyTo(start.Span);
            z.Span.CopyTo(start.Span[(batch * per)..]);
            int[] labels = [.. classes, .. Enumerable.Repeat(numClasses, batch)];
            predictor = ladder.DiffusionNetwork is { } network ? DitNoisePredictors.Of(network, labels) : DitNoisePredictors.Guided(model, labels, ladder.Guidance!);
        }
        else
        {
            predictor = ladder.DiffusionNetwork is { } network ? DitNoisePredictors.Of(network, classes) : DitNoisePredictors.Conditional(model, classes);
        }

        noise.Prepare(start.Shape, DrawCount);
        var log = new ModelUsageLog(batch);
        var served = new int[batch];
        var trajectory = new List<Tensor>();
        NoisePredictor counted = (x, t) =>
        {
            log.BeginStep(served);
            log.AddEvaluation(served, ladder.FlopsPerImage);
            return predictor(x, t);
        };
        int done = 0;
        void OnStep(int index, GaussianStep step)
        {
            done++;
            if (recordTrajectory) trajectory.Add(step.Sample.Clone());
            progress?.Report(new SamplingProgress(done, StepCount, log.Evaluations, log.MeanFlopsPerImage)
            {
                State = step.Sample,
                ModelPerSample = served,
            });
        }
        var result = Ddim
            ? Diffusion.DdimSampleLoop(counted, start, noise, Eta, clipDenoised: false, OnStep, cancellationToken)
            : Diffusion.PSampleLoop(counted, start, noise, clipDenoised: false, OnStep, cancellationToken);
        if (!guided) return new SamplingResult(result, trajectory, log);
        var half = new Tensor(z.Shape);
        result.Span[..(batch * per)].CopyTo(half.Span);
        return new SamplingResult(half, trajectory, log);
    }
}
