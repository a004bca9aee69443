using MediatorDiT.Tensors;

namespace MediatorDiT.Diffusion;

/// <summary>
/// SiT's transport: an interpolation path between noise x0 (t = 0) and data x1 (t = 1), what the network
/// predicts, and how its training loss is weighted. It knows nothing about the network or the sampler:
/// it turns a prediction at (x_t, t) into drifts and scores, and a data batch into a training target.
/// States are float32 tensors (B, ...) with one float32 time per sample; per-sample coefficients come
/// from the <see cref="InterpolationPath"/> in float32, as the official code computes them.
/// </summary>
public sealed class Transport
{
    /// <summary>The interpolant between noise and data.</summary>
    public PathType PathType { get; }
    /// <summary>What the network predicts: velocity, score or noise.</summary>
    public PredictionType Prediction { get; }
    /// <summary>The per-sample weight of the training loss.</summary>
    public LossWeighting LossWeighting { get; }
    /// <summary>The coefficients of <see cref="PathType"/>.</summary>
    public InterpolationPath Path { get; }

    /// <summary>Distance kept from the path's singular ends when drawing training times.</summary>
    public double TrainEps { get; }

    /// <summary>Distance kept from the path's singular ends when sampling.</summary>
    public double SampleEps { get; }

    /// <summary>
    /// SiT's create_transport. Default epsilons as SiT: VP 1e-5 (train) and 1e-3 (sample); linear and GVP
    /// with score or noise prediction 1e-3 and 1e-3; velocity prediction on linear or GVP is stable
    /// everywhere, so 0. Unlike SiT, explicitly given epsilons are always honoured.
    /// </summary>
    public Transport(PathType path = PathType.Linear, PredictionType prediction = PredictionType.Velocity,
        LossWeighting lossWeighting = LossWeighting.None, double? trainEps = null, double? sampleEps = null)
    {
        if (!Enum.IsDefined(prediction))
            throw new MediatorDiTException($"prediction type {(int)prediction} is not one of Velocity, Score, Noise.");
        if (!Enum.IsDefined(lossWeighting))
            throw new MediatorDiTException($"loss weighting {(int)lossWeighting} is not one of None, Velocity, Likelihood.");
        Path = InterpolationPath.Create(path);
        PathType = path;
        Prediction = prediction;
        LossWeighting = lossWeighting;
        (double defaultTrain, double defaultSample) = path == PathType.VP ? (1e-5, 1e-3)
            : prediction != PredictionType.Velocity ? (1e-3, 1e-3)
            : (0.0, 0.0);
        TrainEps = trainEps ?? defaultTrain;
        SampleEps = sampleEps ?? defaultSample;
        if (!(TrainEps >= 0 && TrainEps < 0.5))
            throw new MediatorDiTException($"train_eps must be in [0, 0.5), got {TrainEps}.");
        if (!(SampleEps >= 0 && SampleEps < 0.5))
            throw new MediatorDiTException($"sample_eps must be in [0, 0.5), got {SampleEps}.");
    }

    /// <summary>
    /// SiT's check_interval: the time interval [t0, t1] a sampler or the training-time draw may use.
    /// VP always stops short of t = 1 (by eps, or by the SDE's last step). Linear and GVP need no
    /// margin for an ODE on a velocity model; otherwise t1 stops short likewise and t0 starts at eps
    /// for the SBDM diffusion of an SDE or for score and noise models (their coefficients blow up at 0).
    /// </summary>
    public (double T0, double T1) CheckInterval(double trainEps, double sampleEps, DiffusionForm diffusionForm = DiffusionForm.SBDM,
        bool sde = false, bool reverse = false, bool eval = false, double lastStepSize = 0.0)
    {
        double t0 = 0, t1 = 1;
        double eps = eval ? sampleEps : trainEps;
        bool stopAtEps = !sde || lastStepSize == 0;
        if (PathType == PathType.VP)
        {
            t1 = stopAtEps ? 1 - eps : 1 - lastStepSize;
        }
        else if (Prediction != PredictionType.Velocity || sde)
        {
            t0 = (diffusionForm == DiffusionForm.SBDM && sde) || Prediction != PredictionType.Velocity ? eps : 0;
            t1 = stopAtEps ? 1 - eps : 1 - lastStepSize;
        }
        if (reverse) (t0, t1) = (1 - t0, 1 - t1);
        return (t0, t1);
    }

    /// <summary>
    /// The training draw: x0 ~ N(0, I) shaped like x1 (B, ...), then t (B) uniform on the training
    /// interval, in that order from <paramref name="random"/>.
    /// </summary>
    public (float[] T, Tensor X0, Tensor X1) Sample(Tensor x1, RandomSource random)
    {
        ArgumentNullException.ThrowIfNull(x1);
        ArgumentNullException.ThrowIfNull(random);
        int batch = BatchOf(x1, nameof(x1));
        var x0 = new Tensor(x1.Shape);
        random.FillGaussian(x0.Span);
        var (t0, t1) = CheckInterval(TrainEps, SampleEps);
        var t = new float[batch];
        for (int i = 0; i < batch; i++) t[i] = (float)(random.NextDouble() * (t1 - t0) + t0);
        return (t, x0, x1);
    }

    /// <summary>SiT's plan: x_t = alpha_t x1 + sigma_t x0 and its velocity u_t = d_alpha_t x1 + d_sigma_t x0.</summary>
    public (Tensor Xt, Tensor Ut) PathSample(ReadOnlySpan<float> t, Tensor x0, Tensor x1)
    {
        int per = CheckSamples(t, x0, nameof(x0), x1, nameof(x1));
        var xt = new Tensor(x1.Shape);
        var ut = new Tensor(x1.Shape);
        for (int b = 0; b < t.Length; b++)
        {
            var (alpha, dAlpha) = Path.AlphaAt(t[b]);
            var (sigma, dSigma) = Path.SigmaAt(t[b]);
            float a = alpha, da = dAlpha, s = sigma, ds = dSigma;
            var n = x0.Span.Slice(b * per, per);
            var d = x1.Span.Slice(b * per, per);
            var xs = xt.Span.Slice(b * per, per);
            var us = ut.Span.Slice(b * per, per);
            for (int i = 0; i < per; i++)
            {
                xs[i] = a * d[i] + s * n[i];
                us[i] = da * d[i] + ds * n[i];
            }
        }
        return (xt, ut);
    }

    /// <summary>
    /// SiT's compute_drift: DriftMean = MeanScale_t * x (B, ...) and the per-sample DriftVariance (B).
    /// The probability-flow drift is -DriftMean + DriftVariance * score.
    /// </summary>
    public (Tensor DriftMean, float[] DriftVariance) ComputeDrift(Tensor x, ReadOnlySpan<float> t)
    {
        int per = CheckSamples(t, x, nameof(x));
        var mean = new Tensor(x.Shape);
        var variance = new float[t.Length];
        for (int b = 0; b < t.Length; b++)
        {
            var (meanScale, v) = Path.DriftAt(t[b]);
            variance[b] = v;
            float m = meanScale;
            var src = x.Span.Slice(b * per, per);
            var dst = mean.Span.Slice(b * per, per);
            for (int i = 0; i < per; i++) dst[i] = m * src[i];
        }
        return (mean, variance);
    }

    /// <summary>SiT's compute_diffusion: the diffusion coefficient w_t (B) of the given form.</summary>
    public float[] ComputeDiffusion(ReadOnlySpan<float> t, DiffusionForm form, double norm = 1.0)
    {
        CheckDiffusion(form, norm);
        var w = new float[t.Length];
        for (int b = 0; b < t.Length; b++) w[b] = Path.DiffusionAt(t[b], form, norm);
        return w;
    }

    /// <summary>get_score_from_velocity: the score (B, ...) implied by a velocity at (x, t).</summary>
    public Tensor ScoreFromVelocity(Tensor velocity, Tensor x, ReadOnlySpan<float> t) =>
        FromVelocity(velocity, x, t, Path.ScoreFromVelocityAt);

    /// <summary>get_noise_from_velocity: the noise x0 (B, ...) implied by a velocity at (x, t).</summary>
    public Tensor NoiseFromVelocity(Tensor velocity, Tensor x, ReadOnlySpan<float> t) =>
        FromVelocity(velocity, x, t, Path.NoiseFromVelocityAt);

    /// <summary>get_velocity_from_score: velocity = DriftVariance * score - DriftMean.</summary>
    public Tensor VelocityFromScore(Tensor score, Tensor x, ReadOnlySpan<float> t)
    {
        int per = CheckSamples(t, score, nameof(score), x, nameof(x));
        var velocity = new Tensor(x.Shape);
        for (int b = 0; b < t.Length; b++)
        {
            var (meanScale, variance) = Path.DriftAt(t[b]);
            float m = meanScale, v = variance;
            var s = score.Span.Slice(b * per, per);
            var xs = x.Span.Slice(b * per, per);
            var dst = velocity.Span.Slice(b * per, per);
            for (int i = 0; i < per; i++) dst[i] = v * s[i] - m * xs[i];
        }
        return velocity;
    }

    /// <summary>get_drift: the probability-flow ODE drift (B, ...) for the network's prediction at (x, t).</summary>
    public Tensor DriftFromPrediction(Tensor prediction, Tensor x, ReadOnlySpan<float> t)
    {
        int per = CheckSamples(t, prediction, nameof(prediction), x, nameof(x));
        var drift = new Tensor(x.Shape);
        for (int b = 0; b < t.Length; b++)
            SdeDriftInto(prediction.Span.Slice(b * per, per), x.Span.Slice(b * per, per), t[b], 0, drift.Span.Slice(b * per, per));
        return drift;
    }

    /// <summary>get_score: the score (B, ...) for the network's prediction at (x, t).</summary>
    public Tensor ScoreFromPrediction(Tensor prediction, Tensor x, ReadOnlySpan<float> t)
    {
        int per = CheckSamples(t, prediction, nameof(prediction), x, nameof(x));
        var score = new Tensor(x.Shape);
        for (int b = 0; b < t.Length; b++)
            ScoreInto(prediction.Span.Slice(b * per, per), x.Span.Slice(b * per, per), t[b], score.Span.Slice(b * per, per));
        return score;
    }

    /// <summary>
    /// SiT's training_losses for a prediction made at (x_t, t) with x_t from <see cref="PathSample"/>: the
    /// per-sample loss (B), the mean over each sample's elements of: velocity (p - u_t)^2; noise
    /// w (p - x0)^2; score w (p sigma_t + x0)^2, with w from <see cref="LossWeighting"/>. When
    /// <paramref name="gradient"/> is given (shaped like the prediction) it receives d(mean over the batch
    /// of the losses) / d prediction, for back-propagation.
    /// </summary>
    public float[] TrainingLoss(Tensor prediction, ReadOnlySpan<float> t, Tensor x0, Tensor x1, Tensor? gradient = null)
    {
        int per = CheckSamples(t, prediction, nameof(prediction), x0, nameof(x0));
        CheckSamples(t, x1, nameof(x1));
        if (!x1.SameShape(x0))
            throw new MediatorDiTException($"x1 has shape [{x1.ShapeString}] but x0 has [{x0.ShapeString}]; they must match.");
        if (gradient is not null && !gradient.SameShape(prediction))
            throw new MediatorDiTException($"the gradient tensor has shape [{gradient.ShapeString}] but the prediction has [{prediction.ShapeString}].");
        int batch = t.Length;
        var losses = new float[batch];
        double gradScale = 2.0 / ((double)per * batch);
        for (int b = 0; b < batch; b++)
        {
            var p = prediction.Span.Slice(b * per, per);
            var noise = x0.Span.Slice(b * per, per);
            var data = x1.Span.Slice(b * per, per);
            var g = gradient is null ? Span<float>.Empty : gradient.Span.Slice(b * per, per);
            double sum = 0;
            var terms = LossTermsAt(t[b]);
            if (Prediction == PredictionType.Velocity)
            {
                float da = terms.DAlpha, ds = terms.DSigma;
                for (int i = 0; i < per; i++)
                {
                    float r = p[i] - (da * data[i] + ds * noise[i]);
                    sum += (double)r * r;
                    if (!g.IsEmpty) g[i] = (float)(gradScale * r);
                }
            }
            else
            {
                double sigma = terms.Sigma, weight = terms.Weight;
                float s = (float)sigma;
                for (int i = 0; i < per; i++)
                {
                    // Noise: p should equal x0. Score: p should equal -x0 / sigma_t.
                    float r = Prediction == PredictionType.Noise ? p[i] - noise[i] : p[i] * s + noise[i];
                    sum += (double)r * r;
                    if (!g.IsEmpty) g[i] = (float)(gradScale * weight * r * (Prediction == PredictionType.Noise ? 1 : sigma));
                }
                sum *= weight;
            }
            losses[b] = (float)(sum / per);
        }
        return losses;
    }

    /// <summary>
    /// The per-image constants of <see cref="TrainingLoss"/> at time t, in the types it computes them in (the device
    /// loss takes them from here too): the velocity target's d alpha / dt and d sigma / dt, and for noise and score
    /// predictions sigma_t and the loss weight w (1, (var / sigma)^2 for velocity weighting, var / sigma^2 for likelihood).
    /// </summary>
    internal (float DAlpha, float DSigma, double Sigma, double Weight) LossTermsAt(float t)
    {
        if (Prediction == PredictionType.Velocity) return (Path.AlphaAt(t).DAlpha, Path.SigmaAt(t).DSigma, 0, 1);
        double sigma = Path.SigmaAt(t).Sigma;
        double variance = Path.DriftAt(t).Variance;
        double weight = LossWeighting switch
        {
            LossWeighting.Velocity => (variance / sigma) * (variance / sigma),
            LossWeighting.Likelihood => variance / (sigma * sigma),
            _ => 1.0,
        };
        return (0, 0, sigma, weight);
    }

    /// <summary>
    /// destination = drift + w * score for a prediction at (x, t) over any number of rows sharing t: the
    /// SDE drift of SiT's sampler, or with <paramref name="diffusion"/> = 0 the probability-flow drift
    /// (the score term is then skipped, where the official code would multiply 0 by an infinite score).
    /// </summary>
    internal void SdeDriftInto(ReadOnlySpan<float> prediction, ReadOnlySpan<float> x, float t, float diffusion, Span<float> destination)
    {
        float g = diffusion;
        switch (Prediction)
        {
            case PredictionType.Velocity:
            {
                if (diffusion == 0)
                {
                    prediction.CopyTo(destination);
                    return;
                }
                var (scale, divisor) = Path.ScoreFromVelocityAt(t);
                float a = scale, v = divisor;
                for (int i = 0; i < x.Length; i++)
                    destination[i] = prediction[i] + g * ((a * prediction[i] - x[i]) / v);
                return;
            }
            case PredictionType.Score:
            {
                var (meanScale, variance) = Path.DriftAt(t);
                float m = meanScale, v = variance;
                for (int i = 0; i < x.Length; i++)
                {
                    float score = prediction[i];
                    destination[i] = -m * x[i] + v * score + (diffusion == 0 ? 0 : g * score);
                }
                return;
            }
            default:
            {
                var (meanScale, variance) = Path.DriftAt(t);
                float m = meanScale, v = variance, sigma = Path.SigmaAt(t).Sigma;
                for (int i = 0; i < x.Length; i++)
                {
                    float score = prediction[i] / -sigma;
                    destination[i] = -m * x[i] + v * score + (diffusion == 0 ? 0 : g * score);
                }
                return;
            }
        }
    }

    /// <summary>destination = the score for a prediction at (x, t) over any number of rows sharing t.</summary>
    internal void ScoreInto(ReadOnlySpan<float> prediction, ReadOnlySpan<float> x, float t, Span<float> destination)
    {
        switch (Prediction)
        {
            case PredictionType.Velocity:
            {
                var (scale, divisor) = Path.ScoreFromVelocityAt(t);
                float a = scale, v = divisor;
                for (int i = 0; i < x.Length; i++) destination[i] = (a * prediction[i] - x[i]) / v;
                return;
            }
            case PredictionType.Score:
                prediction.CopyTo(destination);
                return;
            default:
            {
                float sigma = Path.SigmaAt(t).Sigma;
                for (int i = 0; i < x.Length; i++) destination[i] = prediction[i] / -sigma;
                return;
            }
        }
    }

    internal static void CheckDiffusion(DiffusionForm form, double norm)
    {
        if (!Enum.IsDefined(form))
            throw new MediatorDiTException($"diffusion form {(int)form} is not one of {string.Join(", ", Enum.GetNames<DiffusionForm>())}.");
        if (!(norm >= 0) || double.IsInfinity(norm))
            throw new MediatorDiTException($"diffusion norm must be a finite number >= 0, got {norm}.");
    }

    private Tensor FromVelocity(Tensor velocity, Tensor x, ReadOnlySpan<float> t, Func<float, (float Scale, float Divisor)> coefficients)
    {
        int per = CheckSamples(t, velocity, nameof(velocity), x, nameof(x));
        var result = new Tensor(x.Shape);
        for (int b = 0; b < t.Length; b++)
        {
            var (scale, divisor) = coefficients(t[b]);
            float a = scale, v = divisor;
            var vs = velocity.Span.Slice(b * per, per);
            var xs = x.Span.Slice(b * per, per);
            var dst = result.Span.Slice(b * per, per);
            for (int i = 0; i < per; i++) dst[i] = (a * vs[i] - xs[i]) / v;
        }
        return result;
    }

    private static int BatchOf(Tensor x, string name)
    {
        if (x.Rank < 1 || x.Dim(0) == 0)
            throw new MediatorDiTException($"{name} must have a leading batch dimension with at least one sample, got shape [{x.ShapeString}].");
        return x.Dim(0);
    }

    /// <summary>Checks that t has one entry per sample of each tensor and that the tensors agree; returns elements per sample.</summary>
    private static int CheckSamples(ReadOnlySpan<float> t, Tensor a, string aName, Tensor? b = null, string? bName = null)
    {
        ArgumentNullException.ThrowIfNull(a, aName);
        int batch = BatchOf(a, aName);
        if (t.Length != batch)
            throw new MediatorDiTException($"t has {t.Length} entries but {aName} has {batch} samples; give one time per sample.");
        if (b is not null && !b.SameShape(a))
            throw new MediatorDiTException($"{bName} has shape [{b.ShapeString}] but {aName} has [{a.ShapeString}]; they must match.");
        return a.Length / batch;
    }
}
