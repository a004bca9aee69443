using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using MediatorDiT.Cuda.Kernels;
using MediatorDiT.Models;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Cuda.Kernels;

/// <summary>
/// The accelerator the device-kernel tests run on, with its kernels: by default one ILGPU context with its CPU
/// accelerator for all of them (kernels compile at first use, so sharing it keeps the tests quick). The CPU accelerator
/// runs the kernels' code as a GPU would, group by group, without a GPU; this one simulates ILGPU's default CPU device,
/// warps of 4 lanes and groups of at most 16 threads, on which <see cref="Kernels"/> runs the row kernels a thread per
/// row (as <see cref="KernelSet"/> chooses for a CPU). <see cref="CardAcceleratorFixture"/> runs the same tests on a
/// real CUDA card.
/// </summary>
public class AcceleratorFixture : IDisposable
{
    private readonly Action _release;

    public AcceleratorFixture() : this(CPUDevice.Default, warpRows: false)
    {
    }

    /// <summary>An accelerator simulating <paramref name="simulated"/>; <see cref="Kernels"/> with row kernels a warp per row or not.</summary>
    protected AcceleratorFixture(CPUDevice simulated, bool warpRows, bool sameBitsAsCpu = true)
        : this(CpuAccelerator(simulated, out var release), release, warpRows, sameBitsAsCpu)
    {
    }

    /// <summary>
    /// The fixture of <paramref name="accelerator"/>, which <paramref name="release"/> frees with what owns it (its
    /// context, or the device that holds both).
    /// </summary>
    protected AcceleratorFixture(Accelerator accelerator, Action release, bool warpRows, bool sameBitsAsCpu)
    {
        Accelerator = accelerator;
        _release = release;
        SameBitsAsCpu = sameBitsAsCpu;
        Kernels = new KernelSet(Accelerator, warpRows);
        ThreadRowKernels = new KernelSet(Accelerator, warpRows: false);
        WarpRowKernels = new KernelSet(Accelerator, warpRows: true);
    }

    private static Accelerator CpuAccelerator(CPUDevice simulated, out Action release)
    {
        var context = Context.Create(builder => builder.CPU(simulated).Math(MathMode.Default));
        var accelerator = context.CreateCPUAccelerator(0, CPUAcceleratorMode.Parallel);
        release = () =>
        {
            accelerator.Dispose();
            context.Dispose();
        };
        return accelerator;
    }

    public Accelerator Accelerator { get; }

    /// <summary>The kernels as the fixture's device would run them: a thread per row here, a warp per row on <see cref="CudaShapedAcceleratorFixture"/> and a card.</summary>
    internal KernelSet Kernels { get; }

    /// <summary>The kernels with the row kernels' reference mapping, a thread per row.</summary>
    internal KernelSet ThreadRowKernels { get; }

    /// <summary>The kernels with the row kernels a warp per row, as on a GPU.</summary>
    internal KernelSet WarpRowKernels { get; }

    /// <summary>
    /// Whether a kernel gives the bits of the CPU kernel that computes the same operations in the same order: true on
    /// ILGPU's CPU accelerator, false on a card, where the driver's compiler may contract a float multiply and add into
    /// one fused multiply-add (ILGPU writes them without a rounding modifier, which PTX lets it contract).
    /// </summary>
    public bool SameBitsAsCpu { get; }

    /// <summary>
    /// How far a card's result may be from the bits a CPU accelerator gives (<see cref="AssertSameBits"/>): 1e-5 of
    /// max(|expected|, rms(expected)). A contraction changes one rounding of a product, 2^-24 of it, so even a sum of
    /// thousands of such terms stays far inside; a wrong index or formula is off by the value's own size.
    /// </summary>
    public const double CardTolerance = 1e-5;

    /// <summary>
    /// <paramref name="actual"/> (a kernel's result) has the bits of <paramref name="expected"/>; on a card, where
    /// those bits cannot be expected (<see cref="SameBitsAsCpu"/>), it is within <see cref="CardTolerance"/>.
    /// </summary>
    public void AssertSameBits(float[] expected, float[] actual, string what = "")
    {
        if (SameBitsAsCpu) KernelData.AssertSameBits(expected, actual, what);
        else AssertNear(expected, actual, CardTolerance, what);
    }

    /// <summary>
    /// bf16 values <paramref name="actual"/> equal <paramref name="expected"/>; on a card each within one bf16 step
    /// (2^-7 of max(|expected|, rms)): a float that moved by a contraction may round to the neighbouring bf16 value.
    /// </summary>
    public void AssertSameHalves(ushort[] expected, ushort[] actual, string what = "")
    {
        Assert.Equal(expected.Length, actual.Length);
        if (!SameBitsAsCpu)
        {
            AssertNear(expected.Select(Bf16.Widen).ToArray(), actual.Select(Bf16.Widen).ToArray(), 1.0 / 128, what);
            return;
        }
        for (int i = 0; i < expected.Length; i++)
            if (expected[i] != actual[i])
                Assert.Fail($"{what}{(what.Length == 0 ? "" : " ")}element {i}: expected 0x{expected[i]:X4}, got 0x{actual[i]:X4}");
    }

    /// <summary>
    /// |actual - expected| &lt;= tolerance max(|expected|, rms(expected)) for every element (exact where all are zero;
    /// NaN where NaN is expected): the card's comparisons.
    /// </summary>
    internal static void AssertNear(float[] expected, float[] actual, double tolerance, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double squares = 0;
        foreach (float e in expected) if (float.IsFinite(e)) squares += (double)e * e;
        double rms = Math.Sqrt(squares / Math.Max(1, expected.Length));
        for (int i = 0; i < expected.Length; i++)
        {
            bool near = float.IsNaN(expected[i]) ? float.IsNaN(actual[i])
                : expected[i] == actual[i] || Math.Abs((double)actual[i] - expected[i]) <= tolerance * Math.Max(Math.Abs((double)expected[i]), rms);
            if (!near)
                Assert.Fail($"{what}{(what.Length == 0 ? "" : ", ")}element {i} on the card: expected {expected[i]:R}, got {actual[i]:R} " +
                            $"(tolerance {tolerance} of max(|expected|, rms {rms:G3}))");
        }
    }

    /// <summary>A device copy of <paramref name="values"/>.</summary>
    public MemoryBuffer1D<float, Stride1D.Dense> Upload(float[] values) => Accelerator.Allocate1D(values);

    /// <summary>The buffer's values after every queued launch.</summary>
    public float[] Download(MemoryBuffer1D<float, Stride1D.Dense> buffer)
    {
        Accelerator.Synchronize();
        return buffer.GetAsArray1D();
    }

    public void Dispose()
    {
        _release();
        GC.SuppressFinalize(this);
    }
}

/// <summary>
/// A CPU accelerator shaped as an NVIDIA GPU (ILGPU's simulated NVIDIA device): warps of 32 lanes and groups of up to
/// 1,024 threads, so <see cref="KernelSet"/> launches what it launches on a card (8 warps of rows to a group, 256-thread
/// reductions, the tile softmax's register kernel for rows of up to 256 logits, SiT's 256 tokens) and the warp
/// shuffles run their five rounds; <see cref="AcceleratorFixture.Kernels"/> runs the row kernels a warp per row, as
/// on a GPU. Its launches are slow on a CPU (a thread per lane), so it runs the kernel and product tests only
/// (each such test class has a twin on it at the end of its file).
/// </summary>
public sealed class CudaShapedAcceleratorFixture() : AcceleratorFixture(CPUDevice.Nvidia, warpRows: true);

/// <summary>
/// A CPU accelerator shaped as a CUDA device whose comparisons are a card's (<see cref="AcceleratorFixture.SameBitsAsCpu"/>
/// false): the tests of those comparisons and of the runner that gives the kernel tests a card's fixture.
/// </summary>
internal sealed class CardComparisonsOnCpuFixture() : AcceleratorFixture(CPUDevice.Nvidia, warpRows: true, sameBitsAsCpu: false);

[CollectionDefinition(Name)]
public sealed class CpuAcceleratorCollection : ICollectionFixture<AcceleratorFixture>
{
    public const string Name = "ILGPU CPU accelerator";
}

[CollectionDefinition(Name)]
public sealed class CudaShapedAcceleratorCollection : ICollectionFixture<CudaShapedAcceleratorFixture>
{
    public const string Name = "ILGPU CPU accelerator shaped as a CUDA device";
}

/// <summary>Inputs and comparisons the kernel tests share.</summary>
internal static class KernelData
{
    /// <summary>n values uniform in [lo, hi) from a fixed seed.</summary>
    public static float[] Uniform(int n, int seed, float lo = -4f, float hi = 4f)
    {
        var random = new Random(seed);
        var values = new float[n];
        for (int i = 0; i < n; i++) values[i] = lo + (hi - lo) * random.NextSingle();
        return values;
    }

    /// <summary>Every element equal, bit for bit.</summary>
    public static void AssertSameBits(float[] expected, float[] actual, string what = "")
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i]))
                Assert.Fail($"{what}{(what.Length == 0 ? "" : ", ")}element {i}: expected {expected[i]:R}, got {actual[i]:R}");
    }

    /// <summary>|actual - expected| &lt;= tolerance |expected| for every element.</summary>
    public static void AssertRelative(float[] expected, float[] actual, double tolerance)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            if (!(Math.Abs((double)actual[i] - expected[i]) <= tolerance * Math.Abs((double)expected[i])))
                Assert.Fail($"element {i}: expected {expected[i]:R}, got {actual[i]:R} (relative tolerance {tolerance})");
    }
}

/// <summary>Comparisons of gradients computed in another summation order than the CPU's.</summary>
internal static class GradientData
{
    /// <summary>
    /// |actual - expected| &lt;= tolerance max(|expected|, rms(expected)) for every element: relative where the
    /// gradient is of its tensor's size, and absolute at the tensor's scale where it is near zero (there a sum
    /// of O(rms) terms in another order cancels to a residue of their rounding, not of the value).
    /// </summary>
    public static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double tolerance, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double squares = 0;
        foreach (float e in expected) squares += (double)e * e;
        double rms = Math.Sqrt(squares / Math.Max(1, expected.Length));
        Assert.True(rms > 0, $"{what}: the expected gradient is all zeros, so the comparison would prove nothing");
        for (int i = 0; i < expected.Length; i++)
            if (!(Math.Abs((double)actual[i] - expected[i]) <= tolerance * Math.Max(Math.Abs((double)expected[i]), rms)))
                Assert.Fail($"{what}, element {i}: expected {expected[i]:R}, got {actual[i]:R} (tolerance {tolerance} of max(|expected|, rms {rms:G3}))");
    }
}

/// <summary>The CPU attention layers the device's attention backward is checked against.</summary>
internal static class CpuAttentionLayers
{
    /// <summary>Random weights and input, then a forward and a backward of the layer on the CPU (which keep its saved tensors and gradients).</summary>
    public static void Run(IAttention attention, int batch, int tokens, int dim, ulong seed)
    {
        var rng = new RandomSource(seed);
        foreach (var p in attention.Parameters)
        {
            rng.FillGaussian(p.Value.Span, 0, 0.5f);
            p.Grad!.Zero();
        }
        var x = new Tensor(batch * tokens, dim);
        rng.FillGaussian(x.Span);
        var dy = new Tensor(batch * tokens, dim);
        rng.FillGaussian(dy.Span);
        attention.Forward(x, new Tensor(batch * tokens, dim), batch);
        attention.Backward(dy, new Tensor(batch * tokens, dim));
    }
}

/// <summary>
/// The buffers a mediator core backward writes (KernelSet.MediatorCoreBackward, AttentionProducts.MediatorBackward):
/// dqkv (B*N, 3D), dS1 and dS2 (B, H, n, N), the per-image depthwise gradients (B, 10, D), and the scratch dVm and dT (B, H, n, hd).
/// </summary>
internal sealed class MediatorBackwardOutputs : IDisposable
{
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _dqkv, _dS1, _dS2, _dTaps, _dVm, _dT;

    public MediatorBackwardOutputs(Accelerator accelerator, int batch, int tokens, int heads, int headDim, int mediators)
    {
        int dim = heads * headDim, maps = batch * heads * mediators * tokens, small = batch * heads * mediators * headDim;
        _dqkv = accelerator.Allocate1D<float>(batch * tokens * 3 * dim);
        _dS1 = accelerator.Allocate1D<float>(maps);
        _dS2 = accelerator.Allocate1D<float>(maps);
        _dTaps = accelerator.Allocate1D<float>(batch * 10 * dim);
        _dVm = accelerator.Allocate1D<float>(small);
        _dT = accelerator.Allocate1D<float>(small);
    }

    /// <summary>The backward's views: the forward's saved tensors, the depthwise taps (9, D) and dO given, the outputs these buffers.</summary>
    public MediatorBackwardViews Views(ArrayView<float> qkv, ArrayView<float> tokens, ArrayView<float> a1, ArrayView<float> a2, ArrayView<float> vm,
        ArrayView<float> taps, ArrayView<float> dO) =>
        new(qkv, tokens, a1, a2, vm, taps, dO, _dqkv.View, _dS1.View, _dS2.View, _dTaps.View, _dVm.View, _dT.View);

    /// <summary>dqkv, dS1, dS2 and the per-image depthwise gradients, after every queued launch.</summary>
    public float[][] Download()
    {
        _dqkv.Accelerator.Synchronize();
        return [_dqkv.GetAsArray1D(), _dS1.GetAsArray1D(), _dS2.GetAsArray1D(), _dTaps.GetAsArray1D()];
    }

    public void Dispose()
    {
        foreach (var buffer in new[] { _dqkv, _dS1, _dS2, _dTaps, _dVm, _dT }) buffer.Dispose();
    }
}
