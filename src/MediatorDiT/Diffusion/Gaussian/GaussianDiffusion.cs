using MediatorDiT.Tensors;

namespace MediatorDiT.Diffusion;

/// <summary>
/// DiT's Gaussian diffusion (gaussian_diffusion.py with respace.py's SpacedDiffusion): the schedule
/// arrays in float64, the forward process q, the reverse step p with learned-range (or fixed) variances,
/// the training loss (epsilon MSE plus the variational bound with a stop-gradient on the mean), and
/// ancestral and DDIM sampling. Timesteps are indices into this (possibly respaced) process; the network
/// is called with <see cref="TimestepMap"/>[t], the original step. Per-step coefficients are rounded to
/// float32 before they meet the tensors, as the official _extract_into_tensor does, and element-wise
/// arithmetic follows the official order in float32.
/// </summary>
public sealed class GaussianDiffusion
{
    /// <summary>T, the number of steps of this (possibly respaced) process.</summary>
    public int NumTimesteps { get; }
    /// <summary>Length of the process this one was respaced from (T itself when not respaced).</summary>
    public int OriginalNumSteps { get; }
    /// <summary>What the network's first C output channels predict: the noise or x_0.</summary>
    public GaussianMeanType MeanType { get; }
    /// <summary>How the reverse step's variance is chosen (fixed, or learned from the last C channels).</summary>
    public GaussianVarianceType VarianceType { get; }
    /// <summary>The training loss: MSE on the mean target plus, for learned variances, the (optionally rescaled) variational bound.</summary>
    public GaussianLossType LossType { get; }

    /// <summary>Respaced index -> original step.</summary>
    public IReadOnlyList<int> TimestepMap => _timestepMap;

    /// <summary>beta_t for each step t in [0, T).</summary>
    public IReadOnlyList<double> Betas => _betas;
    /// <summary>alphabar_t = prod over s &lt;= t of (1 - beta_s).</summary>
    public IReadOnlyList<double> AlphasCumprod => _alphasCumprod;
    /// <summary>alphabar_{t-1}, with 1 at t = 0.</summary>
    public IReadOnlyList<double> AlphasCumprodPrev => _alphasCumprodPrev;
    /// <summary>alphabar_{t+1}, with 0 at the last step.</summary>
    public IReadOnlyList<double> AlphasCumprodNext => _alphasCumprodNext;
    /// <summary>sqrt(alphabar_t), the data coefficient of q(x_t | x_0).</summary>
    public IReadOnlyList<double> SqrtAlphasCumprod => _sqrtAlphasCumprod;
    /// <summary>sqrt(1 - alphabar_t), the noise coefficient of q(x_t | x_0).</summary>
    public IReadOnlyList<double> SqrtOneMinusAlphasCumprod => _sqrtOneMinusAlphasCumprod;
    /// <summary>log(1 - alphabar_t).</summary>
    public IReadOnlyList<double> LogOneMinusAlphasCumprod => _logOneMinusAlphasCumprod;
    /// <summary>sqrt(1 / alphabar_t), which turns x_t into x_0 together with <see cref="SqrtRecipM1AlphasCumprod"/>.</summary>
    public IReadOnlyList<double> SqrtRecipAlphasCumprod => _sqrtRecipAlphasCumprod;
    /// <summary>sqrt(1 / alphabar_t - 1): x_0 = sqrt(1 / alphabar_t) x_t - sqrt(1 / alphabar_t - 1) eps.</summary>
    public IReadOnlyList<double> SqrtRecipM1AlphasCumprod => _sqrtRecipM1AlphasCumprod;
    /// <summary>The variance of q(x_{t-1} | x_t, x_0): beta_t (1 - alphabar_{t-1}) / (1 - alphabar_t); 0 at t = 0.</summary>
    public IReadOnlyList<double> PosteriorVariance => _posteriorVariance;
    /// <summary>log <see cref="PosteriorVariance"/>, with step 1's value at t = 0 (empty for a one-step process).</summary>
    public IReadOnlyList<double> PosteriorLogVarianceClipped => _posteriorLogVarianceClipped;
    /// <summary>The x_0 coefficient of the posterior mean: beta_t sqrt(alphabar_{t-1}) / (1 - alphabar_t).</summary>
    public IReadOnlyList<double> PosteriorMeanCoef1 => _posteriorMeanCoef1;
    /// <summary>The x_t coefficient of the posterior mean: (1 - alphabar_{t-1}) sqrt(1 - beta_t) / (1 - alphabar_t).</summary>
    public IReadOnlyList<double> PosteriorMeanCoef2 => _posteriorMeanCoef2;

    private readonly int[] _timestepMap;
    private readonly double[] _betas, _logBetas, _alphasCumprod, _alphasCumprodPrev, _alphasCumprodNext,
        _sqrtAlphasCumprod, _sqrtOneMinusAlphasCumprod, _logOneMinusAlphasCumprod, _sqrtRecipAlphasCumprod,
        _sqrtRecipM1AlphasCumprod, _posteriorVariance, _posteriorLogVarianceClipped, _posteriorMeanCoef1, _posteriorMeanCoef2,
        _fixedLargeVariance, _fixedLargeLogVariance;

    /// <summary>
    /// The process with these betas (in (0, 1]). <paramref name="timestepMap"/> gives the original step of
    /// each index (identity when null) and <paramref name="originalNumSteps"/> the original length.
    /// </summary>
    public GaussianDiffusion(IReadOnlyList<double> betas, GaussianMeanType meanType = GaussianMeanType.Epsilon,
        GaussianVarianceType varianceType = GaussianVarianceType.LearnedRange, GaussianLossType lossType = GaussianLossType.Mse,
        IReadOnlyList<int>? timestepMap = null, int? originalNumSteps = null)
    {
        int n = betas.Count;
        if (n == 0) throw new MediatorDiTException("a diffusion process needs at least one beta.");
        for (int i = 0; i < n; i++)
            if (!(betas[i] > 0 && betas[i] <= 1))
                throw new MediatorDiTException($"beta {i} is {betas[i]}; every beta must lie in (0, 1].");
        if (timestepMap is not null && timestepMap.Count != n)
            throw new MediatorDiTException($"the timestep map has {timestepMap.Count} entries but the process has {n} steps.");
        NumTimesteps = n;
        OriginalNumSteps = originalNumSteps ?? n;
        MeanType = meanType;
        VarianceType = varianceType;
        LossType = lossType;
        _timestepMap = timestepMap?.ToArray() ?? Enumerable.Range(0, n).ToArray();

        _betas = betas.ToArray();
        _logBetas = _betas.Select(v => Math.Log(v)).ToArray();
        _alphasCumprod = new double[n];
        double product = 1;
        for (int i = 0; i < n; i++)
        {
            product *= 1.0 - _betas[i];
            _alphasCumprod[i] = product;
        }
        _alphasCumprodPrev = [1.0, .. _alphasCumprod[..^1]];
        _alphasCumprodNext = [.. _alphasCumprod[1..], 0.0];
        _sqrtAlphasCumprod = _alphasCumprod.Select(v => Math.Sqrt(v)).ToArray();
        _sqrtOneMinusAlphasCumprod = _alphasCumprod.Select(a => Math.Sqrt(1.0 - a)).ToArray();
        _logOneMinusAlphasCumprod = _alphasCumprod.Select(a => Math.Log(1.0 - a)).ToArray();
        _sqrtRecipAlphasCumprod = _alphasCumprod.Select(a => Math.Sqrt(1.0 / a)).ToArray();
        _sqrtRecipM1AlphasCumprod = _alphasCumprod.Select(a => Math.Sqrt(1.0 / a - 1)).ToArray();
        _posteriorVariance = new double[n];
        _posteriorMeanCoef1 = new double[n];
        _posteriorMeanCoef2 = new double[n];
        for (int i = 0; i < n; i++)
        {
            double ac = _alphasCumprod[i], prev = _alphasCumprodPrev[i];
            _posteriorVariance[i] = _betas[i] * (1.0 - prev) / (1.0 - ac);
            _posteriorMeanCoef1[i] = _betas[i] * Math.Sqrt(prev) / (1.0 - ac);
            _posteriorMeanCoef2[i] = (1.0 - prev) * Math.Sqrt(1.0 - _betas[i]) / (1.0 - ac);
        }
        // The posterior variance is 0 at the first step, so its log takes step 1's value there.
        _posteriorLogVarianceClipped = n > 1
            ? _posteriorVariance.Select((v, i) => Math.Log(i == 0 ? _posteriorVariance[1] : v)).ToArray()
            : [];
        _fixedLargeVariance = n > 1 ? _betas.Select((b, i) => i == 0 ? _posteriorVariance[1] : b).ToArray() : [.. _betas];
        _fixedLargeLogVariance = _fixedLargeVariance.Select(v => Math.Log(v)).ToArray();
    }

    /// <summary>
    /// SpacedDiffusion: keeps the original steps <paramref name="useTimesteps"/> and sets each kept step's
    /// beta so the kept alphas_cumprod are unchanged: beta = 1 - alphas_cumprod[i] / alphas_cumprod[previous kept].
    /// </summary>
    public static GaussianDiffusion Spaced(IReadOnlyList<double> baseBetas, IEnumerable<int> useTimesteps,
        GaussianMeanType meanType = GaussianMeanType.Epsilon, GaussianVarianceType varianceType = GaussianVarianceType.LearnedRange,
        GaussianLossType lossType = GaussianLossType.Mse)
    {
        var keep = new HashSet<int>(useTimesteps);
        var baseProcess = new GaussianDiffusion(baseBetas, meanType, varianceType, lossType);
        foreach (int t in keep)
            if (t < 0 || t >= baseBetas.Count)
                throw new MediatorDiTException($"respaced step {t} is outside the original process of {baseBetas.Count} steps.");
        var betas = new List<double>();
        var map = new List<int>();
        double last = 1.0;
        for (int i = 0; i < baseProcess.NumTimesteps; i++)
        {
            if (!keep.Contains(i)) continue;
            double ac = baseProcess._alphasCumprod[i];
            betas.Add(1 - ac / last);
            last = ac;
            map.Add(i);
        }
        return new GaussianDiffusion(betas, meanType, varianceType, lossType, map, baseBetas.Count);
    }

    /// <summary>
    /// DiT's create_diffusion: <paramref name="timestepRespacing"/> "" or null for all steps, "250",
    /// "ddim50" or sections "10,15,20" (see <see cref="TimestepSpacing"/>). Every process it returns is
    /// spaced, as the official one is, so even the full process derives its betas from alphas_cumprod.
    /// </summary>
    public static GaussianDiffusion Create(string? timestepRespacing, string noiseSchedule = BetaSchedules.Linear,
        bool sigmaSmall = false, bool predictXStart = false, bool learnSigma = true, bool rescaleLearnedSigmas = false,
        int diffusionSteps = 1000)
    {
        var betas = BetaSchedules.Named(noiseSchedule, diffusionSteps);
        var steps = TimestepSpacing.Parse(diffusionSteps, timestepRespacing);
        var variance = learnSigma ? GaussianVarianceType.LearnedRange
            : sigmaSmall ? GaussianVarianceType.FixedSmall : GaussianVarianceType.FixedLarge;
        return Spaced(betas, steps, predictXStart ? GaussianMeanType.StartX : GaussianMeanType.Epsilon, variance,
            rescaleLearnedSigmas ? GaussianLossType.RescaledMse : GaussianLossType.Mse);
    }

    private bool LearnsVariance => VarianceType is GaussianVarianceType.LearnedRange or GaussianVarianceType.Learned;

    /// <summary>Original steps of a batch of indices of this process.</summary>
    public int[] MapTimesteps(ReadOnlySpan<int> t)
    {
        var mapped = new int[t.Length];
        for (int i = 0; i < t.Length; i++) mapped[i] = _timestepMap[CheckStep(t[i])];
        return mapped;
    }

    private int CheckStep(int t) =>
        (uint)t < (uint)NumTimesteps ? t : throw new MediatorDiTException($"timestep {t} is outside the process's 0..{NumTimesteps - 1}.");

    private static float F(double[] array, int t) => (float)array[t];

    /// <summary>x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) noise.</summary>
    public Tensor QSample(Tensor xStart, ReadOnlySpan<int> t, Tensor noise)
    {
        int per = CheckBatch(xStart, t, "x_start");
        RequireSameShape(xStart, noise, "noise");
        var xt = new Tensor(xStart.Shape);
        var x0 = xStart.Span;
        var e = noise.Span;
        var o = xt.Span;
        for (int b = 0; b < t.Length; b++)
        {
            int step = CheckStep(t[b]);
            float a = F(_sqrtAlphasCumprod, step), s = F(_sqrtOneMinusAlphasCumprod, step);
            for (int i = b * per; i < (b + 1) * per; i++) o[i] = a * x0[i] + s * e[i];
        }
        return xt;
    }

    /// <summary>q(x_{t-1} | x_t, x_0): mean = coef1 x_0 + coef2 x_t, the posterior variance and its clipped log.</summary>
    public GaussianPosterior QPosteriorMeanVariance(Tensor xStart, Tensor xT, ReadOnlySpan<int> t)
    {
        int per = CheckBatch(xT, t, "x_t");
        RequireSameShape(xT, xStart, "x_start");
        var mean = new Tensor(xT.Shape);
        var variance = new Tensor(xT.Shape);
        var logVariance = new Tensor(xT.Shape);
        for (int b = 0; b < t.Length; b++)
        {
            int step = CheckStep(t[b]);
            PosteriorMean(xStart.Span.Slice(b * per, per), xT.Span.Slice(b * per, per), step, mean.Span.Slice(b * per, per));
            variance.Span.Slice(b * per, per).Fill(F(_posteriorVariance, step));
            logVariance.Span.Slice(b * per, per).Fill(F(_posteriorLogVarianceClipped, step));
        }
        return new GaussianPosterior(mean, variance, logVariance);
    }

    private void PosteriorMean(ReadOnlySpan<float> xStart, ReadOnlySpan<float> xT, int step, Span<float> mean)
    {
        float c1 = F(_posteriorMeanCoef1, step), c2 = F(_posteriorMeanCoef2, step);
        for (int i = 0; i < mean.Length; i++) mean[i] = c1 * xStart[i] + c2 * xT[i];
    }

    /// <summary>p_mean_variance: calls the network at the mapped timesteps and reads its output.</summary>
    public GaussianModelMoments PMeanVariance(NoisePredictor model, Tensor x, ReadOnlySpan<int> t, bool clipDenoised = true)
    {
        CheckBatch(x, t, "x");
        var output = model(x, MapTimesteps(t));
        return MomentsFromOutput(output, x, t, clipDenoised);
    }

    /// <summary>
    /// p_mean_variance from a network output already computed: (B, 2C, H, W) for learned variances, else
    /// (B, C, H, W). x_0 is predicted from epsilon (or taken as is), optionally clamped to [-1, 1], and
    /// the mean is the posterior mean given that prediction.
    /// </summary>
    public GaussianModelMoments MomentsFromOutput(Tensor output, Tensor x, ReadOnlySpan<int> t, bool clipDenoised)
    {
        int per = CheckBatch(x, t, "x"), batch = t.Length, channels = x.Dim(1);
        int outChannels = LearnsVariance ? 2 * channels : channels;
        if (output.Rank != x.Rank || output.Dim(0) != batch || output.Dim(1) != outChannels || output.Length != batch * per * outChannels / channels)
            throw new MediatorDiTException(
                $"the network returned shape [{output.ShapeString}] but the diffusion ({VarianceType} variance) expects [{batch}, {outChannels}, ...] for x [{x.ShapeString}].");
        var mean = new Tensor(x.Shape);
        var variance = new Tensor(x.Shape);
        var logVariance = new Tensor(x.Shape);
        var predXStart = new Tensor(x.Shape);
        var o = output.Span;
        for (int b = 0; b < batch; b++)
        {
            int step = CheckStep(t[b]), outBase = b * per * outChannels / channels, xb = b * per;
            var lv = logVariance.Span.Slice(xb, per);
            switch (VarianceType)
            {
                case GaussianVarianceType.LearnedRange:
                {
                    float minLog = F(_posteriorLogVarianceClipped, step), maxLog = F(_logBetas, step);
                    var v = o.Slice(outBase + per, per);
                    for (int i = 0; i < per; i++)
                    {
                        float frac = (v[i] + 1f) / 2f;
                        lv[i] = frac * maxLog + (1f - frac) * minLog;
                    }
                    break;
                }
                case GaussianVarianceType.Learned:
                    o.Slice(outBase + per, per).CopyTo(lv);
                    break;
                case GaussianVarianceType.FixedLarge:
                    lv.Fill(F(_fixedLargeLogVariance, step));
                    break;
                default:
                    lv.Fill(F(_posteriorLogVarianceClipped, step));
                    break;
            }
            var va = variance.Span.Slice(xb, per);
            if (VarianceType is GaussianVarianceType.FixedLarge or GaussianVarianceType.FixedSmall)
                va.Fill(VarianceType == GaussianVarianceType.FixedLarge ? F(_fixedLargeVariance, step) : F(_posteriorVariance, step));
            else
                for (int i = 0; i < per; i++) va[i] = MathF.Exp(lv[i]);

            var prediction = o.Slice(outBase, per);
            var px = predXStart.Span.Slice(xb, per);
            var xs = x.Span.Slice(xb, per);
            if (MeanType == GaussianMeanType.StartX) prediction.CopyTo(px);
            else
            {
                float recip = F(_sqrtRecipAlphasCumprod, step), recipM1 = F(_sqrtRecipM1AlphasCumprod, step);
                for (int i = 0; i < per; i++) px[i] = recip * xs[i] - recipM1 * prediction[i];
            }
            if (clipDenoised)
                for (int i = 0; i < per; i++) px[i] = Math.Clamp(px[i], -1f, 1f);
            PosteriorMean(px, xs, step, mean.Span.Slice(xb, per));
        }
        return new GaussianModelMoments(mean, variance, logVariance, predXStart);
    }

    /// <summary>
    /// p_sample: x_{t-1} = mean + [t != 0] exp(log_variance / 2) noise, with one draw from <paramref name="noise"/>
    /// after the network call.
    /// </summary>
    public GaussianStep PSample(NoisePredictor model, Tensor x, ReadOnlySpan<int> t, INoiseSource noise, bool clipDenoised = true)
    {
        var moments = PMeanVariance(model, x, t, clipDenoised);
        var z = new Tensor(x.Shape);
        noise.Next(z.Span);
        int per = x.Length / t.Length;
        var sample = new Tensor(x.Shape);
        var m = moments.Mean.Span;
        var lv = moments.LogVariance.Span;
        var zs = z.Span;
        var s = sample.Span;
        for (int b = 0; b < t.Length; b++)
        {
            float mask = t[b] != 0 ? 1f : 0f;
            for (int i = b * per; i < (b + 1) * per; i++) s[i] = m[i] + mask * MathF.Exp(0.5f * lv[i]) * zs[i];
        }
        return new GaussianStep(sample, moments.PredXStart);
    }

    /// <summary>
    /// ddim_sample: eps is re-derived from the x_0 prediction; sigma = eta sqrt((1 - abar_prev) / (1 - abar))
    /// sqrt(1 - abar / abar_prev); x_{t-1} = x_0 sqrt(abar_prev) + sqrt(1 - abar_prev - sigma^2) eps + [t != 0] sigma noise.
    /// One draw is taken after the network call even when eta is 0, as the official code does.
    /// </summary>
    public GaussianStep DdimSample(NoisePredictor model, Tensor x, ReadOnlySpan<int> t, INoiseSource noise, float eta = 0f,
        bool clipDenoised = true)
    {
        var moments = PMeanVariance(model, x, t, clipDenoised);
        var z = new Tensor(x.Shape);
        noise.Next(z.Span);
        int per = x.Length / t.Length;
        var sample = new Tensor(x.Shape);
        var px = moments.PredXStart.Span;
        var xs = x.Span;
        var zs = z.Span;
        var s = sample.Span;
        for (int b = 0; b < t.Length; b++)
        {
            int step = t[b];
            float recip = F(_sqrtRecipAlphasCumprod, step), recipM1 = F(_sqrtRecipM1AlphasCumprod, step);
            float alphaBar = F(_alphasCumprod, step), alphaBarPrev = F(_alphasCumprodPrev, step);
            float sigma = eta * MathF.Sqrt((1f - alphaBarPrev) / (1f - alphaBar)) * MathF.Sqrt(1f - alphaBar / alphaBarPrev);
            float sqrtPrev = MathF.Sqrt(alphaBarPrev), direction = MathF.Sqrt(1f - alphaBarPrev - sigma * sigma);
            float mask = step != 0 ? 1f : 0f;
            for (int i = b * per; i < (b + 1) * per; i++)
            {
                float eps = (recip * xs[i] - px[i]) / recipM1;
                float meanPred = px[i] * sqrtPrev + direction * eps;
                s[i] = meanPred + mask * sigma * zs[i];
            }
        }
        return new GaussianStep(sample, moments.PredXStart);
    }

    /// <summary>
    /// p_sample_loop from a given x_T (B, C, H, W) through every step of this process, last index first.
    /// <paramref name="onStep"/> sees each step's index and result.
    /// </summary>
    public Tensor PSampleLoop(NoisePredictor model, Tensor start, INoiseSource noise, bool clipDenoised = true,
        Action<int, GaussianStep>? onStep = null, CancellationToken cancellationToken = default) =>
        Loop(start, onStep, cancellationToken, (x, t) => PSample(model, x, t, noise, clipDenoised));

    /// <summary>p_sample_loop from x_T drawn from <paramref name="noise"/> (one draw of <paramref name="shape"/> first).</summary>
    public Tensor PSampleLoop(NoisePredictor model, int[] shape, INoiseSource noise, bool clipDenoised = true,
        Action<int, GaussianStep>? onStep = null, CancellationToken cancellationToken = default) =>
        PSampleLoop(model, Draw(shape, noise), noise, clipDenoised, onStep, cancellationToken);

    /// <summary>ddim_sample_loop from a given x_T through every step of this process.</summary>
    public Tensor DdimSampleLoop(NoisePredictor model, Tensor start, INoiseSource noise, float eta = 0f, bool clipDenoised = true,
        Action<int, GaussianStep>? onStep = null, CancellationToken cancellationToken = default) =>
        Loop(start, onStep, cancellationToken, (x, t) => DdimSample(model, x, t, noise, eta, clipDenoised));

    /// <summary>ddim_sample_loop from x_T drawn from <paramref name="noise"/>.</summary>
    public Tensor DdimSampleLoop(NoisePredictor model, int[] shape, INoiseSource noise, float eta = 0f, bool clipDenoised = true,
        Action<int, GaussianStep>? onStep = null, CancellationToken cancellationToken = default) =>
        DdimSampleLoop(model, Draw(shape, noise), noise, eta, clipDenoised, onStep, cancellationToken);

    private Tensor Loop(Tensor start, Action<int, GaussianStep>? onStep, CancellationToken cancellationToken, Func<Tensor, int[], GaussianStep> step)
    {
        if (start.Rank < 2) throw new MediatorDiTException($"the starting noise has shape [{start.ShapeString}] but (B, C, ...) was expected.");
        var x = start;
        var t = new int[start.Dim(0)];
        for (int i = NumTimesteps - 1; i >= 0; i--)
        {
            cancellationToken.ThrowIfCancellationRequested();
            Array.Fill(t, i);
            var result = step(x, t);
            onStep?.Invoke(i, result);
            x = result.Sample;
        }
        return x;
    }

    private static Tensor Draw(int[] shape, INoiseSource noise)
    {
        var x = new Tensor(shape);
        noise.Next(x.Span);
        return x;
    }

    /// <summary>
    /// training_losses: x_t = q_sample(x_0, t, noise); the network's mean channels give the MSE against
    /// the target (noise, or x_0); for learned variances the variational bound term (bits per dimension)
    /// is computed from the output with its mean channels frozen: KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t))
    /// for t &gt; 0 and the discretised decoder NLL at t = 0, scaled by T / 1000 for the rescaled loss.
    /// With <paramref name="computeOutputGradient"/>, also d(mean over the batch of loss) / d(output).
    /// </summary>
    public GaussianTrainingLosses TrainingLosses(NoisePredictor model, Tensor xStart, ReadOnlySpan<int> t, Tensor noise,
        bool computeOutputGradient = false)
    {
        int per = CheckBatch(xStart, t, "x_start"), batch = t.Length;
        var xT = QSample(xStart, t, noise);
        var output = model(xT, MapTimesteps(t));
        int outPer = (LearnsVariance ? 2 : 1) * per;
        if (output.Rank != xStart.Rank || output.Dim(0) != batch || output.Length != batch * outPer)
            throw new MediatorDiTException(
                $"the network returned shape [{output.ShapeString}] but the diffusion ({VarianceType} variance) expects [{batch}, {(LearnsVariance ? 2 : 1) * xStart.Dim(1)}, ...] for x [{xStart.ShapeString}].");
        var gradient = computeOutputGradient ? new Tensor(output.Shape) : null;
        var o = output.Span;
        var target = MeanType == GaussianMeanType.Epsilon ? noise.Span : xStart.Span;

        var mse = new float[batch];
        for (int b = 0; b < batch; b++)
        {
            double sum = 0;
            for (int i = 0; i < per; i++)
            {
                float d = target[b * per + i] - o[b * outPer + i];
                sum += d * d;
            }
            mse[b] = (float)(sum / per);
            if (gradient is not null)
            {
                float scale = 2f / (per * batch);
                for (int i = 0; i < per; i++)
                    gradient.Span[b * outPer + i] = scale * (o[b * outPer + i] - target[b * per + i]);
            }
        }

        float[]? vb = null;
        if (LearnsVariance)
        {
            vb = VariationalBound(output, xStart, xT, t, gradient);
        }
        var loss = new float[batch];
        for (int b = 0; b < batch; b++) loss[b] = vb is null ? mse[b] : mse[b] + vb[b];
        return new GaussianTrainingLosses(loss, mse, vb, gradient);
    }

    /// <summary>_vb_terms_bpd with the output's mean channels frozen; adds its gradient to the variance channels.</summary>
    private float[] VariationalBound(Tensor output, Tensor xStart, Tensor xT, ReadOnlySpan<int> t, Tensor? gradient)
    {
        int batch = t.Length, per = xT.Length / batch, outPer = 2 * per;
        var moments = MomentsFromOutput(output, xT, t, clipDenoised: false);
        var truth = QPosteriorMeanVariance(xStart, xT, t);
        float bits = (float)Math.Log(2.0);
        float rescale = LossType == GaussianLossType.RescaledMse ? (float)(NumTimesteps / 1000.0) : 1f;
        var vb = new float[batch];
        var x0 = xStart.Span;
        var m1 = truth.Mean.Span;
        var lv1 = truth.LogVariance.Span;
        var m2 = moments.Mean.Span;
        var lv2 = moments.LogVariance.Span;
        for (int b = 0; b < batch; b++)
        {
            int step = t[b];
            bool decoder = step == 0;
            double sum = 0;
            for (int i = b * per; i < (b + 1) * per; i++)
                sum += decoder
                    ? -GaussianLikelihood.DiscretizedLogLikelihood(x0[i], m2[i], 0.5f * lv2[i])
                    : GaussianLikelihood.NormalKl(m1[i], lv1[i], m2[i], lv2[i]);
            vb[b] = (float)(sum / per) / bits * rescale;

            if (gradient is null) continue;
            // d lv2 / d v: (max_log - min_log) / 2 for the learned range, 1 for a learned log variance.
            float dLogVar = VarianceType == GaussianVarianceType.LearnedRange
                ? (F(_logBetas, step) - F(_posteriorLogVarianceClipped, step)) / 2f
                : 1f;
            float scale = rescale / (bits * per * batch) * dLogVar;
            var g = gradient.Span.Slice(b * outPer + per, per);
            for (int i = 0; i < per; i++)
            {
                int k = b * per + i;
                float dTerm = decoder
                    ? -0.5f * GaussianLikelihood.DiscretizedLogLikelihoodGradLogScale(x0[k], m2[k], 0.5f * lv2[k])
                    : GaussianLikelihood.NormalKlGradLogVar2(m1[k], lv1[k], m2[k], lv2[k]);
                g[i] = scale * dTerm;
            }
        }
        return vb;
    }

    private int CheckBatch(Tensor x, ReadOnlySpan<int> t, string what)
    {
        if (x.Rank < 2 || x.Dim(0) != t.Length || t.Length == 0)
            throw new MediatorDiTException($"{what} has shape [{x.ShapeString}] but (B, C, ...) with B = {t.Length} timesteps was expected.");
        return x.Length / t.Length;
    }

    private static void RequireSameShape(Tensor reference, Tensor other, string what)
    {
        if (!reference.SameShape(other))
            throw new MediatorDiTException($"{what} has shape [{other.ShapeString}] but [{reference.ShapeString}] was expected.");
    }
}
