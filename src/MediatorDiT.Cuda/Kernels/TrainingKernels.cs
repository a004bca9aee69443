using ILGPU;
using MediatorDiT.Diffusion;
using MediatorDiT.Nn;

namespace MediatorDiT.Cuda.Kernels;

/// <summary>
/// The training step's kernels besides the network: the SiT transport loss and its gradient, the global gradient norm
/// and the clipping scale, the optimiser step (AdamW, the EMA and the weights' bf16 copy in one pass), zeroing.
/// Reductions run in a fixed order (each group's threads stride over their range, then a tree over the group in
/// shared memory, then an ordered sum of the groups' partials), so a result is the same on every run of one
/// accelerator configuration; the group size is the launcher's <see cref="KernelSet.ReductionGroupSize"/>.
/// </summary>
internal static class TrainingKernels
{
    /// <summary>The largest reduction group, the size of the kernels' shared-memory arrays.</summary>
    public const int MaxGroupSize = 256;

    /// <summary>Floats of the coefficient row per image in <see cref="TrainingLoss"/>: a, b, gradient scale, gradient factor, loss weight.</summary>
    public const int LossCoefficients = 5;

    /// <summary>
    /// One group per image of prediction, x0 (noise) and x1 (data), (B, per), as Transport.TrainingLoss: the residual
    /// r = p - (a x1 + b x0) (velocity: a, b = d alpha, d sigma), p - x0 (noise) or p a + x0 (score: a = sigma);
    /// gradient = (float)((gradScale r) factor) in double; losses[image] = (float)(sum(r^2) weight / per), the sum
    /// in double. coefficients (B, 5): a, b, gradScale, factor, weight (a and b are floats held exactly).
    /// </summary>
    public static void TrainingLoss(ArrayView<float> prediction, ArrayView<float> noise, ArrayView<float> data, ArrayView<double> coefficients,
        ArrayView<float> gradient, ArrayView<float> losses, int per, int mode)
    {
        var partial = SharedMemory.Allocate<double>(MaxGroupSize);
        int image = Grid.IdxX, tid = Group.IdxX, size = Group.DimX;
        long o = (long)image * per, c = (long)image * LossCoefficients;
        float a = (float)coefficients[c], b = (float)coefficients[c + 1];
        double gradScale = coefficients[c + 2], factor = coefficients[c + 3];
        double sum = 0;
        for (int i = tid; i < per; i += size)
        {
            float p = prediction[o + i];
            float r = mode == 0 ? p - (a * data[o + i] + b * noise[o + i]) : mode == 1 ? p - noise[o + i] : p * a + noise[o + i];
            sum += (double)r * r;
            gradient[o + i] = (float)(gradScale * r * factor);
        }
        partial[tid] = sum;
        Group.Barrier();
        for (int s = size / 2; s > 0; s >>= 1)
        {
            if (tid < s) partial[tid] += partial[tid + s];
            Group.Barrier();
        }
        if (tid == 0) losses[image] = (float)(partial[0] * coefficients[c + 4] / per);
    }

    /// <summary>Group g's sum of squares of g[g chunk ..) (chunk floats, the last group fewer) into partials[g], in fp32.</summary>
    public static void SumOfSquaresPartials(ArrayView<float> g, ArrayView<float> partials, int chunk)
    {
        var partial = SharedMemory.Allocate<float>(MaxGroupSize);
        int block = Grid.IdxX, tid = Group.IdxX, size = Group.DimX;
        long start = (long)block * chunk, end = start + chunk < g.Length ? start + chunk : g.Length;
        float sum = 0;
        for (long i = start + tid; i < end; i += size) sum += g[i] * g[i];
        partial[tid] = sum;
        Group.Barrier();
        for (int s = size / 2; s > 0; s >>= 1)
        {
            if (tid < s) partial[tid] += partial[tid + s];
            Group.Barrier();
        }
        if (tid == 0) partials[block] = partial[0];
    }

    /// <summary>
    /// One group: norm = sqrt of the partials' sum (thread t adds partials t, t + size, .. in order, then the group's
    /// tree, a fixed order), and the clipping scale the trainer applies, maxNorm / (norm + 1e-6) in double when
    /// 0 &lt; maxNorm &lt; norm, else 1; result = (norm, scale). (SiT-XL/2 has some 41,000 partials: one thread adding
    /// them in turn took milliseconds.)
    /// </summary>
    public static void GradientNormAndClipScale(ArrayView<float> partials, ArrayView<float> result, int count, double maxNorm)
    {
        var partial = SharedMemory.Allocate<float>(MaxGroupSize);
        int tid = Group.IdxX, size = Group.DimX;
        float sum = 0;
        for (int i = tid; i < count; i += size) sum += partials[i];
        partial[tid] = sum;
        Group.Barrier();
        for (int s = size / 2; s > 0; s >>= 1)
        {
            if (tid < s) partial[tid] += partial[tid + s];
            Group.Barrier();
        }
        if (tid != 0) return;
        float norm = MathF.Sqrt(partial[0]);
        result[0] = norm;
        result[1] = maxNorm > 0 && norm > maxNorm ? (float)(maxNorm / (norm + 1e-6)) : 1f;
    }

    /// <summary>g *= result[1], the clipping scale <see cref="GradientNormAndClipScale"/> left on the device (1: unchanged).</summary>
    public static void ScaleByClip(Index1D i, ArrayView<float> g, ArrayView<float> result) => g[i] *= result[1];

    /// <summary>
    /// The optimiser step over a stretch of the flat parameter buffers, in one pass: with <paramref name="adam"/> 1
    /// AdamW's element update (Nn.AdamWKernel: p *= decay; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
    /// p -= StepSize m / (sqrt(v) / Bc2Sqrt + eps)); then the EMA of the updated p, ema = ema decay + p oneMinusDecay
    /// (Training.Ema.Update's operations), and with <paramref name="bf16"/> 1 the bf16 copy the products read,
    /// p16 = bf16(p). p is read once, where AdamW, the EMA and the rounding as passes of their own read it three times.
    /// </summary>
    public static void OptimizerUpdate(Index1D k, ArrayView<float> p, ArrayView<float> g, ArrayView<float> m, ArrayView<float> v, ArrayView<float> ema,
        ArrayView<ushort> p16, DeviceAdamWScalars s, int adam, float decay, float oneMinusDecay, int bf16)
    {
        float pk = p[k];
        if (adam != 0)
        {
            float gk = g[k];
            if (s.Decays != 0) pk *= s.Decay;
            float mk = m[k] * s.Beta1 + gk * s.OneMinusBeta1;
            float vk = v[k] * s.Beta2 + gk * gk * s.OneMinusBeta2;
            float denom = MathF.Sqrt(vk) / s.Bc2Sqrt + s.Eps;
            pk += -s.StepSize * (mk / denom);
            m[k] = mk;
            v[k] = vk;
            p[k] = pk;
        }
        ema[k] = ema[k] * decay + pk * oneMinusDecay;
        if (bf16 != 0) p16[k] = Bf16.Round(pk);
    }

    /// <summary>x = 0.</summary>
    public static void Zero(Index1D i, ArrayView<float> x) => x[i] = 0f;

    /// <summary>x *= factor: one part's loss gradient scaled by 1 / parts, as the CPU backend scales it.</summary>
    public static void Scale(Index1D i, ArrayView<float> x, float factor) => x[i] *= factor;

    /// <summary>sum += part: the parts' gradients added one part after another, in part order.</summary>
    public static void AddInto(Index1D i, ArrayView<float> sum, ArrayView<float> part) => sum[i] += part[i];

    /// <summary>
    /// The per-image coefficient rows (B, <see cref="LossCoefficients"/>) and mode of <see cref="TrainingLoss"/> for a
    /// transport, computed on the host from Transport.LossTermsAt, as Transport.TrainingLoss takes them.
    /// </summary>
    public static (double[] Coefficients, int Mode) LossCoefficientsFor(Transport transport, ReadOnlySpan<float> t, int per)
    {
        int batch = t.Length;
        var rows = new double[batch * LossCoefficients];
        double gradScale = 2.0 / ((double)per * batch);
        int mode = transport.Prediction switch { PredictionType.Velocity => 0, PredictionType.Noise => 1, _ => 2 };
        for (int b = 0; b < batch; b++)
        {
            var row = rows.AsSpan(b * LossCoefficients, LossCoefficients);
            var terms = transport.LossTermsAt(t[b]);
            if (mode == 0)
            {
                row[0] = terms.DAlpha;
                row[1] = terms.DSigma;
                row[2] = gradScale;
                row[3] = 1;
                row[4] = 1;
                continue;
            }
            row[0] = (float)terms.Sigma;
            row[2] = gradScale * terms.Weight;
            row[3] = mode == 1 ? 1 : terms.Sigma;
            row[4] = terms.Weight;
        }
        return (rows, mode);
    }
}

/// <summary>
/// <see cref="AdamWScalars"/> as a kernel argument: a plain struct of this assembly (ILGPU's generated code may only
/// touch types it can see) with the flag as an int.
/// </summary>
internal readonly struct DeviceAdamWScalars(AdamWScalars s)
{
    public readonly float Decay = s.Decay;
    public readonly int Decays = s.Decays ? 1 : 0;
    public readonly float Beta1 = s.Beta1;
    public readonly float Beta2 = s.Beta2;
    public readonly float OneMinusBeta1 = s.OneMinusBeta1;
    public readonly float OneMinusBeta2 = s.OneMinusBeta2;
    public readonly float Bc2Sqrt = s.Bc2Sqrt;
    public readonly float Eps = s.Eps;
    public readonly float StepSize = s.StepSize;
}
