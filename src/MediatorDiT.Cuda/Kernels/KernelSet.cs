using ILGPU;
using ILGPU.Runtime;
using MediatorDiT.Nn;

namespace MediatorDiT.Cuda.Kernels;

/// <summary>
/// The device kernels compiled for one ILGPU accelerator (a CUDA device, or the CPU accelerator the tests run them
/// on), each loaded once at first use, with launchers over device views. Launches are queued on the accelerator's
/// default stream; <see cref="Synchronize"/> waits for them.
/// </summary>
internal sealed partial class KernelSet
{
    private readonly Accelerator _accelerator;
    private Action<Index1D, ArrayView<float>, ArrayView<float>>? _silu;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>? _gelu;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>? _geluBackward;
    private Action<Index1D, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, int>? _geluFrom16;
    private Action<Index1D, ArrayView<ushort>, ArrayView<float>, ArrayView<ushort>, ArrayView<float>, int>? _geluBackwardFrom16;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>? _gated;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, float>? _adaLn;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, float>? _adaLnWarp;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
        ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, float>? _gatedAdaLnWarp;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>? _softmax;
    private Action<Index1D, ArrayView<float>, ArrayView<ushort>, int>? _roundToBf16;

    /// <summary>
    /// The kernels for <paramref name="accelerator"/>. The row kernels (LayerNorm and adaLN forward and input gradient,
    /// the attention softmaxes and their backward) run a warp per row (<see cref="WarpRowKernels"/>) or a thread per row (their reference
    /// twins, which the tests hold them to); <paramref name="warpRows"/> null: a warp per row on a GPU, a thread per row
    /// on ILGPU's CPU accelerator, which runs a warp's lanes as OS threads and every shuffle as a rendezvous of them (as
    /// IlgpuGemm runs its plain kernel there).
    /// </summary>
    public KernelSet(Accelerator accelerator, bool? warpRows = null)
    {
        _accelerator = accelerator;
        WarpRows = warpRows ?? accelerator.AcceleratorType != AcceleratorType.CPU;
    }

    /// <summary>Whether the row kernels run a warp per row (else a thread per row).</summary>
    public bool WarpRows { get; }

    /// <summary>A launch of whole warps, one per row, up to 8 in a group.</summary>
    private KernelConfig RowLaunch(long rows)
    {
        int warp = _accelerator.WarpSize, perGroup = Math.Clamp(_accelerator.MaxNumThreadsPerGroup / warp, 1, 8);
        Check(rows <= (long)int.MaxValue * perGroup, "too many rows for one launch");
        return new KernelConfig((int)((rows + perGroup - 1) / perGroup), warp * perGroup);
    }

    /// <summary>The accelerator the kernels run on.</summary>
    public Accelerator Accelerator => _accelerator;

    /// <summary>
    /// Where the models over these kernels attribute their time (stage by stage, waiting for the queue at each boundary);
    /// null, the default, for unprofiled runs.
    /// </summary>
    public Performance.DeviceStageProfile? Profile { get; set; }

    /// <summary>Enters a profiled stage until the scope is disposed; nothing when <see cref="Profile"/> is null.</summary>
    public Performance.DeviceStageProfile.Scope Stage(string stage, double flops = 0) => Performance.DeviceStageProfile.Enter(Profile, stage, flops);

    /// <summary>Enters "running stage: <paramref name="part"/>" (a product, a rounding, a column sum inside a layer's stage); nothing when unprofiled.</summary>
    public Performance.DeviceStageProfile.Scope SubStage(string part, double flops = 0) =>
        Profile is { } profile ? Performance.DeviceStageProfile.Enter(profile, profile.Current + ": " + part, flops) : default;

    /// <summary>
    /// The first <paramref name="length"/> elements of a scratch buffer, reallocated to fit when it is too short
    /// (<paramref name="grown"/>); reallocating first waits for the queue, whose launches may still read the old buffer.
    /// </summary>
    public ArrayView<T> Scratch<T>(ref MemoryBuffer1D<T, Stride1D.Dense>? buffer, long length, out bool grown) where T : unmanaged
    {
        grown = buffer is null || buffer.Length < length;
        if (grown)
        {
            if (buffer is not null)
            {
                _accelerator.Synchronize();
                buffer.Dispose();
            }
            buffer = _accelerator.Allocate1D<T>(Math.Max(1, length));
        }
        return ((ArrayView<T>)buffer!.View).SubView(0, length);
    }

    /// <summary>Waits for every queued launch.</summary>
    public void Synchronize() => _accelerator.Synchronize();

    /// <summary>y = gelu(x + bias) over x's length: x is fc1's product before its bias, rows of bias.Length.</summary>
    public void GeluForward(ArrayView<float> x, ArrayView<float> bias, ArrayView<float> y)
    {
        Check(y.Length >= x.Length, "y is shorter than x");
        int width = CheckBiasRows(x, bias);
        (_gelu ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(
            ElementKernels.GeluForward<float, Blas.Fp32Operands>))((int)x.Length, x, bias, y, width);
    }

    /// <summary>y = gelu(x16 + bias) over x16's length: <see cref="GeluForward(ArrayView{float}, ArrayView{float}, ArrayView{float})"/> of fc1's product stored in bf16.</summary>
    public void GeluForward(ArrayView<ushort> x16, ArrayView<float> bias, ArrayView<float> y)
    {
        Check(y.Length >= x16.Length, "y is shorter than x");
        int width = CheckBiasRows(x16, bias);
        (_geluFrom16 ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, int>(
            ElementKernels.GeluForward<ushort, Blas.Bf16Operands>))((int)x16.Length, x16, bias, y, width);
    }

    /// <summary>dx = dy gelu'(x + bias) over x's length (x and bias as <see cref="GeluForward(ArrayView{float}, ArrayView{float}, ArrayView{float})"/>'s; dx may be dy).</summary>
    public void GeluBackward(ArrayView<float> x, ArrayView<float> bias, ArrayView<float> dy, ArrayView<float> dx)
    {
        Check(dy.Length >= x.Length && dx.Length >= x.Length, "dy and dx must be as long as x");
        int width = CheckBiasRows(x, bias);
        (_geluBackward ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(
            ElementKernels.GeluBackward<float, Blas.Fp32Operands>))((int)x.Length, x, bias, dy, dx, width);
    }

    /// <summary>dx = dy16 gelu'(x16 + bias): the backward of fc1's product and fc2's input gradient stored in bf16.</summary>
    public void GeluBackward(ArrayView<ushort> x16, ArrayView<float> bias, ArrayView<ushort> dy16, ArrayView<float> dx)
    {
        Check(dy16.Length >= x16.Length && dx.Length >= x16.Length, "dy and dx must be as long as x");
        int width = CheckBiasRows(x16, bias);
        (_geluBackwardFrom16 ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<ushort>, ArrayView<float>, ArrayView<ushort>, ArrayView<float>, int>(
            ElementKernels.GeluBackward<ushort, Blas.Bf16Operands>))((int)x16.Length, x16, bias, dy16, dx, width);
    }

    /// <summary>The width of the rows of x that a bias row is added to, after checking that x holds whole rows.</summary>
    private static int CheckBiasRows<T>(ArrayView<T> x, ArrayView<float> bias) where T : unmanaged
    {
        Check(bias.Length >= 1 && bias.Length <= int.MaxValue && x.Length % bias.Length == 0, "x must hold whole rows of the bias's length");
        Check(x.Length <= int.MaxValue, "at most 2^31 - 1 values at once");
        return (int)bias.Length;
    }

    /// <summary>y = silu(x) over x's length.</summary>
    public void SiluForward(ArrayView<float> x, ArrayView<float> y)
    {
        Check(y.Length >= x.Length, "y is shorter than x");
        (_silu ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>>(ElementKernels.SiluForward))((int)x.Length, x, y);
    }

    /// <summary>
    /// dst = (branch + bias) * gate + src over rows of d channels: branch is a linear layer's product before its bias (d),
    /// gate (B, d) per image of <paramref name="rowsPerImage"/> rows. dst may be src.
    /// </summary>
    public void GatedResidualForward(ArrayView<float> src, ArrayView<float> branch, ArrayView<float> bias, ArrayView<float> gate, ArrayView<float> dst,
        int d, int rowsPerImage)
    {
        long n = dst.Length;
        CheckGatedResidual(new GatedResidualViews(src, branch, bias, gate, dst), d, rowsPerImage);
        (_gated ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(
            ElementKernels.GatedResidualForward))((int)n, src, branch, bias, gate, dst, d, rowsPerImage);
    }

    /// <summary>
    /// <see cref="GatedResidualForward"/> into r.Dst, then <see cref="AdaLayerNormForward"/> of r.Dst (xhat, y, stats as
    /// there), in one pass over the rows where they run a warp per row (the same bits); a thread per row runs the two.
    /// </summary>
    public void GatedResidualAdaLayerNorm(in GatedResidualViews r, ArrayView<float> shift, ArrayView<float> scale, ArrayView<float> xhat,
        ArrayView<float> y, ArrayView<float> stats, int d, int rowsPerImage, float eps = LayerNorm.DefaultEps)
    {
        if (!WarpRows)
        {
            GatedResidualForward(r.Src, r.Branch, r.Bias, r.Gate, r.Dst, d, rowsPerImage);
            AdaLayerNormForward(r.Dst, shift, scale, xhat, y, stats, d, rowsPerImage, eps);
            return;
        }
        Check(y.Length >= r.Dst.Length, "y is shorter than dst");
        int rows = CheckGatedResidualAdaLayerNorm(r, shift, scale, xhat, stats, d, rowsPerImage);
        if (rows == 0) return;
        (_gatedAdaLnWarp ??= _accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, float>(WarpRowKernels.GatedResidualAdaLayerNorm))(
            RowLaunch(rows), r.Src, r.Branch, r.Bias, r.Gate, r.Dst, shift, scale, xhat, y, stats, rows, d, rowsPerImage, eps);
    }

    /// <summary>The rows of a gated residual followed by an adaLN LayerNorm, after checking both kernels' views.</summary>
    private static int CheckGatedResidualAdaLayerNorm(in GatedResidualViews r, ArrayView<float> shift, ArrayView<float> scale, ArrayView<float> xhat,
        ArrayView<float> stats, int d, int rowsPerImage)
    {
        CheckGatedResidual(r, d, rowsPerImage);
        return CheckAdaLayerNorm(r.Dst, shift, scale, xhat, stats, d, rowsPerImage);
    }

    /// <summary>Checks a gated residual's views: whole rows of d channels in dst, src and branch as long, d biases, a gate row per image.</summary>
    private static void CheckGatedResidual(in GatedResidualViews r, int d, int rowsPerImage)
    {
        long n = r.Dst.Length;
        Check(d >= 1 && rowsPerImage >= 1 && n % d == 0 && r.Bias.Length >= d, "dst must hold whole rows of d channels, bias d of them");
        Check(r.Src.Length >= n && r.Branch.Length >= n && r.Gate.Length >= (n / d + rowsPerImage - 1) / rowsPerImage * d, "src, branch or gate is too short");
    }

    /// <summary>
    /// LayerNorm and adaLN modulation over x (rows, d); stats gets (mean, rstd) per row, xhat the normalised rows unless
    /// it is empty (a backward that makes xhat again from x, <see cref="AdaLayerNormBackward"/>'s xhatFromInput).
    /// </summary>
    public void AdaLayerNormForward(ArrayView<float> x, ArrayView<float> shift, ArrayView<float> scale, ArrayView<float> xhat, ArrayView<float> y,
        ArrayView<float> stats, int d, int rowsPerImage, float eps = LayerNorm.DefaultEps)
    {
        Check(y.Length >= x.Length, "y is shorter than x");
        int rows = CheckAdaLayerNorm(x, shift, scale, xhat, stats, d, rowsPerImage);
        if (rows == 0) return;
        if (WarpRows)
            (_adaLnWarp ??= _accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                ArrayView<float>, int, int, int, float>(WarpRowKernels.AdaLayerNormForward))(RowLaunch(rows), x, shift, scale, xhat, y, stats, rows, d, rowsPerImage, eps);
        else
            (_adaLn ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                ArrayView<float>, int, int, float>(RowKernels.AdaLayerNormForward))(rows, x, shift, scale, xhat, y, stats, d, rowsPerImage, eps);
    }

    /// <summary>The rows of an adaLN LayerNorm over x (rows, d), after checking the views' lengths.</summary>
    private static int CheckAdaLayerNorm(ArrayView<float> x, ArrayView<float> shift, ArrayView<float> scale, ArrayView<float> xhat, ArrayView<float> stats,
        int d, int rowsPerImage)
    {
        Check(d >= 1 && rowsPerImage >= 1 && x.Length % d == 0, "x must hold whole rows of d channels");
        int rows = (int)(x.Length / d);
        long images = (rows + rowsPerImage - 1) / rowsPerImage;
        Check(shift.Length >= images * d && scale.Length >= images * d, "shift and scale need one row per image");
        Check((xhat.Length == 0 || xhat.Length >= x.Length) && stats.Length >= 2L * rows, "xhat (when written) or stats is too short");
        return rows;
    }

    /// <summary>Softmax of each row of x (rows, n) in place, plus the shared bias (n) when given; lse gets each row's log-sum-exp.</summary>
    public void SoftmaxForward(ArrayView<float> x, ArrayView<float> bias, ArrayView<float> lse, int n, bool hasBias)
    {
        Check(n >= 1 && x.Length % n == 0, "x must hold whole rows of n logits");
        int rows = (int)(x.Length / n);
        Check(lse.Length >= rows && (!hasBias || bias.Length >= n), "lse or bias is too short");
        (_softmax ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(RowKernels.SoftmaxForward))(
            rows, x, bias, lse, n, hasBias ? 1 : 0);
    }

    /// <summary>y = bf16(x) over x's length (round to nearest, ties to even, as __float2bfloat16_rn).</summary>
    public void RoundToBf16(ArrayView<float> x, ArrayView<ushort> y)
    {
        Check(y.Length >= x.Length, "y is shorter than x");
        if (x.Length == 0) return;
        Check(x.Length <= int.MaxValue, "at most 2^31 - 1 values are rounded at once");
        (_roundToBf16 ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<ushort>, int>(Bf16Kernels.RoundToBf16))(
            ElementsPerThread.Threads(x.Length), x, y, (int)x.Length);
    }

    /// <summary>The full-attention kernels keep a head's rows in local arrays of <see cref="AttentionKernels.MaxHeadDim"/> floats.</summary>
    private static void CheckHeadDim(int headDim)
    {
        if (headDim > AttentionKernels.MaxHeadDim)
            throw new MediatorDiTException(
                $"full attention on the device takes heads of at most {AttentionKernels.MaxHeadDim} channels; this model's have {headDim} (hidden size / heads).");
    }

    private static void Check(bool ok, string what)
    {
        if (!ok) throw new ArgumentException(what + ".");
    }
}

/// <summary>
/// The adaLN-Zero gated residual's views, Dst = (Branch + Bias) Gate + Src over rows of d channels: Branch a linear
/// layer's product before its Bias (d), Gate (B, d) per image. Dst may be Src.
/// </summary>
internal readonly record struct GatedResidualViews(ArrayView<float> Src, ArrayView<float> Branch, ArrayView<float> Bias, ArrayView<float> Gate,
    ArrayView<float> Dst);
