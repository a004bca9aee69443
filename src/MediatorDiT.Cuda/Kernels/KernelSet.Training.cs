using ILGPU;
using ILGPU.Runtime;
using MediatorDiT.Nn;

namespace MediatorDiT.Cuda.Kernels;

/// <summary>The launchers of the training step's kernels (<see cref="TrainingKernels"/>).</summary>
internal sealed partial class KernelSet
{
    /// <summary>Floats per group-partial of the gradient norm: fixed, so the partials' boundaries do not depend on the device.</summary>
    public const int NormChunk = 16384;

    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<double>, ArrayView<float>, ArrayView<float>, int, int>? _loss;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, int>? _squares;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, double>? _normScale;
    private Action<Index1D, ArrayView<float>, ArrayView<float>>? _scaleByClip;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, DeviceAdamWScalars, int,
        float, float, int>? _optimizer;
    private Action<Index1D, ArrayView<float>>? _zero;
    private Action<Index1D, ArrayView<float>, float>? _scale;
    private Action<Index1D, ArrayView<float>, ArrayView<float>>? _addInto;

    /// <summary>
    /// Threads per group of the reductions: the largest power of two within both the kernels' shared arrays
    /// (<see cref="TrainingKernels.MaxGroupSize"/>) and the accelerator's group limit.
    /// </summary>
    public int ReductionGroupSize
    {
        get
        {
            int limit = Math.Min(TrainingKernels.MaxGroupSize, _accelerator.MaxNumThreadsPerGroup), size = 1;
            while (size * 2 <= limit) size *= 2;
            return size;
        }
    }

    /// <summary>
    /// The transport's training loss over prediction, x0 and x1 (B, per): gradient (B, per) overwritten with dL/dprediction
    /// and losses (B) with each image's loss, from the per-image coefficient rows of
    /// <see cref="TrainingKernels.LossCoefficientsFor"/> (uploaded, (B, 5)) and its mode.
    /// </summary>
    public void TrainingLoss(ArrayView<float> prediction, ArrayView<float> x0, ArrayView<float> x1, ArrayView<double> coefficients, int mode,
        ArrayView<float> gradient, ArrayView<float> losses)
    {
        int images = (int)losses.Length;
        Check(images >= 1 && prediction.Length % images == 0, "prediction must hold one equal part per image");
        long n = prediction.Length;
        Check(x0.Length >= n && x1.Length >= n && gradient.Length >= n && coefficients.Length >= (long)images * TrainingKernels.LossCoefficients,
            "x0, x1, gradient or coefficients is too short");
        Check(mode is >= 0 and <= 2, "mode is 0 (velocity), 1 (noise) or 2 (score)");
        (_loss ??= _accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<double>, ArrayView<float>, ArrayView<float>, int, int>(
            TrainingKernels.TrainingLoss))(new KernelConfig(images, ReductionGroupSize), prediction, x0, x1, coefficients, gradient, losses, (int)(n / images), mode);
    }

    /// <summary>The number of group partials <see cref="GradientNormAndClip"/> needs for <paramref name="length"/> gradient floats.</summary>
    public static int NormPartials(long length) => (int)((length + NormChunk - 1) / NormChunk);

    /// <summary>
    /// The global gradient norm of g (every trainable parameter's gradient, one flat buffer) in fp32, and gradient
    /// clipping: result (2) = (norm, scale) with scale = maxNorm / (norm + 1e-6) when 0 &lt; maxNorm &lt; norm, else 1,
    /// and g scaled by it on the device (not at all when clipping is off: the scale is 1). partials holds
    /// <see cref="NormPartials"/> floats.
    /// </summary>
    public void GradientNormAndClip(ArrayView<float> g, ArrayView<float> partials, ArrayView<float> result, double maxNorm)
    {
        int count = NormPartials(g.Length);
        Check(count >= 1 && partials.Length >= count && result.Length >= 2, "g is empty, or partials or result is too short");
        (_squares ??= _accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int>(TrainingKernels.SumOfSquaresPartials))(
            new KernelConfig(count, ReductionGroupSize), g, partials, NormChunk);
        NormAndClipScale(partials, result, count, maxNorm);
        if (maxNorm > 0)
            (_scaleByClip ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>>(TrainingKernels.ScaleByClip))((int)g.Length, g, result);
    }

    /// <summary>result = (sqrt of the sum of the first <paramref name="count"/> partials, the clipping scale): one group.</summary>
    internal void NormAndClipScale(ArrayView<float> partials, ArrayView<float> result, int count, double maxNorm)
    {
        Check(count >= 1 && partials.Length >= count && result.Length >= 2, "partials or result is too short");
        (_normScale ??= _accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, double>(TrainingKernels.GradientNormAndClipScale))(
            new KernelConfig(1, ReductionGroupSize), partials, result, count, maxNorm);
    }

    /// <summary>
    /// The optimiser step over p's length in one pass (<see cref="TrainingKernels.OptimizerUpdate"/>): AdamW with
    /// <paramref name="adamW"/>'s scalars (null: the stretch is not trained this step, p stays and g, m, v are not
    /// read), then ema = decay ema + (1 - decay) p with Training.Ema's float factors, then p16 = bf16(p) where p16 is
    /// not empty (the bf16 products' copy of the weights).
    /// </summary>
    public void OptimizerUpdate(ArrayView<float> p, ArrayView<float> g, ArrayView<float> m, ArrayView<float> v, ArrayView<float> ema, ArrayView<ushort> p16,
        AdamWScalars? adamW, double emaDecay)
    {
        bool adam = adamW is not null;
        Check(ema.Length >= p.Length && (p16.Length == 0 || p16.Length >= p.Length), "ema and a bf16 copy must be as long as p");
        Check(!adam || g.Length >= p.Length && m.Length >= p.Length && v.Length >= p.Length, "g, m and v must be as long as p");
        Check(p.Length <= int.MaxValue, "at most 2^31 - 1 parameters are updated by one launch");
        if (p.Length == 0) return;
        (_optimizer ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<ushort>, DeviceAdamWScalars, int, float, float, int>(TrainingKernels.OptimizerUpdate))((int)p.Length, p, adam ? g : p, adam ? m : p,
            adam ? v : p, ema, p16, new DeviceAdamWScalars(adamW.GetValueOrDefault()), adam ? 1 : 0, (float)emaDecay, (float)(1 - emaDecay), p16.Length > 0 ? 1 : 0);
    }

    /// <summary>x = 0 over x's length, queued on the stream with the other launches (gradients before a backward pass).</summary>
    public void Zero(ArrayView<float> x) =>
        (_zero ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>>(TrainingKernels.Zero))((int)x.Length, x);

    /// <summary>x *= factor over x's length.</summary>
    public void Scale(ArrayView<float> x, float factor) =>
        (_scale ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, float>(TrainingKernels.Scale))((int)x.Length, x, factor);

    /// <summary>sum += part over sum's length.</summary>
    public void AddInto(ArrayView<float> sum, ArrayView<float> part)
    {
        Check(part.Length >= sum.Length, "part is shorter than sum");
        (_addInto ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>>(TrainingKernels.AddInto))((int)sum.Length, sum, part);
    }
}
