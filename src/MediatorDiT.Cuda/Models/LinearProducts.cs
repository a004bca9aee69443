using ILGPU;
using ILGPU.Runtime;
using MediatorDiT.Cuda.Blas;
using MediatorDiT.Cuda.Kernels;
using MediatorDiT.Tensors;

namespace MediatorDiT.Cuda.Models;

/// <summary>
/// The linear layers' three matrix products (the forward x W^T, the weight gradient dy^T x, the input gradient dy W)
/// at a <see cref="DevicePrecision"/>. In fp32 they are <see cref="IDeviceGemm.Sgemm"/> on the float32 views. In bf16
/// they are <see cref="IDeviceGemm.GemmBf16(in GemmShape, ArrayView{ushort}, ArrayView{ushort}, ArrayView{float})"/>: the activation (and gradient) operands are rounded into scratch
/// buffers by <see cref="KernelSet.RoundToBf16"/> just before each product, and the weights are read from bf16 copies
/// kept beside the float32 master weights (<see cref="KeepBf16Copies"/>; written again through <see cref="Bf16CopyOf"/>
/// after the masters change). Where the network's kernel that produces an activation operand writes its bf16 copy itself
/// (<see cref="OperandsFromProducers"/>), the product reads that copy instead of rounding the fp32 values again; a
/// backward rounds dy once for both its products. Everything else the network computes stays float32. One set of
/// products serves every device model sharing its weights (the members of a training ladder); queued on the accelerator's default stream, so a
/// scratch buffer is free again once the product that reads it is queued. The same products run full attention's
/// core (<see cref="Attention"/>).
/// </summary>
internal sealed class LinearProducts : IDisposable
{
    private readonly KernelSet _kernels;
    private readonly IDeviceGemm _gemm;
    private readonly List<(ArrayView<float> Master, MemoryBuffer1D<ushort, Stride1D.Dense> Copy)> _copies = [];
    private MemoryBuffer1D<ushort, Stride1D.Dense>? _scratchA, _scratchB;
    private MemoryBuffer1D<float, Stride1D.Dense>? _ones, _scratchC;

    /// <summary>
    /// Products by <paramref name="gemm"/> (the caller keeps and disposes it) at <paramref name="precision"/>;
    /// <paramref name="operandsFromProducers"/>: see <see cref="OperandsFromProducers"/> (false gives the same bits
    /// through separate roundings, the reference the tests hold the fused path to).
    /// </summary>
    public LinearProducts(KernelSet kernels, IDeviceGemm gemm, DevicePrecision precision, bool operandsFromProducers = true)
    {
        _kernels = kernels;
        _gemm = gemm;
        Precision = precision;
        OperandsFromProducers = precision == DevicePrecision.Bf16 && operandsFromProducers;
        Attention = new AttentionProducts(kernels, gemm, precision, operandsFromProducers: operandsFromProducers);
    }

    /// <summary>
    /// bf16 only: the models' kernels that produce a product's activation operand (the adaLN LayerNorms, GELU, the
    /// gated residual's and GELU's gradients, the attention cores' head-major copies and softmaxes) write its bf16 copy
    /// themselves, and the training forward keeps the bf16 inputs of qkv, proj, fc1 and fc2 for their weight gradients,
    /// so no product rounds them again. False in fp32.
    /// </summary>
    public bool OperandsFromProducers { get; }

    /// <summary>Full attention's core as products at the same precision, shared by the models these products serve.</summary>
    public AttentionProducts Attention { get; }

    /// <summary>The number format of the products' inputs.</summary>
    public DevicePrecision Precision { get; }

    /// <summary>
    /// bf16: allocates a bf16 copy of each master view (a weight, or a training state's whole flat parameter buffer) and
    /// rounds it; weights inside these views are then read from their copies. fp32: nothing.
    /// </summary>
    public void KeepBf16Copies(IEnumerable<ArrayView<float>> masters)
    {
        if (Precision != DevicePrecision.Bf16) return;
        foreach (var master in masters)
        {
            if (master.Length == 0) continue;
            var copy = _kernels.Accelerator.Allocate1D<ushort>(master.Length);
            _copies.Add((master, copy));
            _kernels.RoundToBf16(master, copy.View);
        }
    }

    /// <summary>
    /// The bf16 copy kept for <paramref name="master"/> (a view given to <see cref="KeepBf16Copies"/>), which whoever
    /// changes the master writes again (training: the optimiser step, as it updates the weights); empty in fp32.
    /// </summary>
    public ArrayView<ushort> Bf16CopyOf(ArrayView<float> master)
    {
        if (Precision != DevicePrecision.Bf16) return default;
        foreach (var (kept, copy) in _copies)
            if (kept.Equals(master)) return copy.View;
        throw new InvalidOperationException("this master has no bf16 copy (KeepBf16Copies was not given it).");
    }

    /// <summary>
    /// y (rows, out) += x (rows, in) W^T for W (out, in): Nn.Linear's product (y holds the bias rows), or y = x W^T
    /// when not <paramref name="accumulate"/> (the bias then added by the kernel that reads y). In bf16 x's bf16 copy is
    /// read when it has one, else x is rounded first.
    /// </summary>
    public void Forward(ProductOperand x, ArrayView<float> weight, ArrayView<float> y, int rows, int inFeatures, int outFeatures, bool accumulate = true) =>
        Product(GemmShape.Single(false, true, rows, outFeatures, inFeatures, 1f, inFeatures, inFeatures, accumulate ? 1f : 0f, outFeatures),
            x, Activation, weight, Weight, y);

    /// <summary>
    /// Nn.Linear.Backward for x (rows, in), W (out, in), dy (rows, out): dW += dy^T x, db += the column sums of dy
    /// (skipped for an empty db: the caller summed them), and dx = dy W (overwritten, or added when
    /// <paramref name="accumulateDx"/>; skipped for an empty dx). In bf16, dy and x are read from their bf16 copies where
    /// they have them (dy's fp32 values are then not read unless db is formed here), else rounded, dy once for both products.
    /// </summary>
    public void Backward(ProductOperand x, ArrayView<float> weight, ProductOperand dy, ArrayView<float> dWeight, ArrayView<float> dBias,
        ArrayView<float> dx, int rows, int inFeatures, int outFeatures, bool accumulateDx)
    {
        dy = WeightAndBiasGradients(x, dy, dWeight, dBias, rows, inFeatures, outFeatures);
        if (dx.Length > 0) InputGradient(dy, weight, dx, rows, inFeatures, outFeatures, accumulateDx);
    }

    /// <summary>
    /// bf16 only: y16 (rows, out) = x W^T rounded to bf16 once as it is stored (the bias added by the kernel that reads
    /// it), as PyTorch's bf16 products store theirs: fc1's output, which GELU reads (half the bytes of fp32, written
    /// and read). With operands from their producers the product writes y16 itself; otherwise its fp32 result goes
    /// to scratch and is rounded in a pass of its own, the same bits.
    /// </summary>
    public void ForwardToBf16(ProductOperand x, ArrayView<float> weight, ArrayView<ushort> y16, int rows, int inFeatures, int outFeatures) =>
        ProductToBf16(GemmShape.Single(false, true, rows, outFeatures, inFeatures, 1f, inFeatures, inFeatures, 0f, outFeatures), x, Activation, weight, Weight, y16);

    /// <summary>
    /// <see cref="Backward"/> with dx (rows, in) = dy W overwritten and stored in bf16 only (dx16, rounded once as in
    /// <see cref="ForwardToBf16"/>): fc2's input gradient, which GELU's backward reads. bf16 only.
    /// </summary>
    public void BackwardToBf16InputGradient(ProductOperand x, ArrayView<float> weight, ProductOperand dy, ArrayView<float> dWeight, ArrayView<float> dBias,
        ArrayView<ushort> dx16, int rows, int inFeatures, int outFeatures)
    {
        dy = WeightAndBiasGradients(x, dy, dWeight, dBias, rows, inFeatures, outFeatures);
        ProductToBf16(GemmShape.Single(false, false, rows, inFeatures, outFeatures, 1f, outFeatures, inFeatures, 0f, inFeatures), dy, Activation, weight, Weight, dx16);
    }

    /// <summary>dW += dy^T x and (unless db is empty) db += the column sums of dy; returns dy with its bf16 copy in bf16 (rounded here where it had none).</summary>
    private ProductOperand WeightAndBiasGradients(ProductOperand x, ProductOperand dy, ArrayView<float> dWeight, ArrayView<float> dBias, int rows,
        int inFeatures, int outFeatures)
    {
        if (Precision == DevicePrecision.Bf16 && !dy.HasBf16)
            using (_kernels.SubStage("bf16 rounding")) dy = new ProductOperand(dy.F32, Rounded(dy.F32.SubView(0, (long)rows * outFeatures), ref _scratchA));
        WeightGradient(dy, x, dWeight, rows, inFeatures, outFeatures);
        if (dBias.Length > 0) BiasGradient(dy.F32, dBias, rows, outFeatures);
        return dy;
    }

    /// <summary>dW (out, in) += dy^T x for dy (rows, out), x (rows, in).</summary>
    public void WeightGradient(ProductOperand dy, ProductOperand x, ArrayView<float> dWeight, int rows, int inFeatures, int outFeatures) =>
        Product(GemmShape.Single(true, false, outFeatures, inFeatures, rows, 1f, outFeatures, inFeatures, 1f, inFeatures), dy, Activation, x, Activation, dWeight);

    /// <summary>dx (rows, in) = dy W (added to dx when <paramref name="accumulate"/>) for dy (rows, out), W (out, in).</summary>
    public void InputGradient(ProductOperand dy, ArrayView<float> weight, ArrayView<float> dx, int rows, int inFeatures, int outFeatures, bool accumulate) =>
        Product(GemmShape.Single(false, false, rows, inFeatures, outFeatures, 1f, outFeatures, inFeatures, accumulate ? 1f : 0f, inFeatures),
            dy, Activation, weight, Weight, dx);

    /// <summary>
    /// dBias (out) += the column sums of dy (rows, out), as the fp32 product ones (1, rows) dy (cuBLAS runs it as a
    /// matrix-vector product over all rows at once; a thread per column would have only out threads): fp32 at every
    /// precision, the gradients' reductions stay fp32.
    /// </summary>
    public void BiasGradient(ArrayView<float> dy, ArrayView<float> dBias, int rows, int outFeatures)
    {
        if (rows == 0) return;
        var ones = _kernels.Scratch(ref _ones, rows, out bool grown);
        if (grown) ones.CopyFromCPU(Enumerable.Repeat(1f, rows).ToArray());
        using (_kernels.SubStage("bias column sums", 2.0 * rows * outFeatures))
            _gemm.Sgemm(GemmShape.Single(false, false, 1, outFeatures, rows, 1f, rows, outFeatures, 1f, outFeatures), ones, dy, dBias);
    }

    private enum Operand { Activation, Weight }

    private const Operand Activation = Operand.Activation, Weight = Operand.Weight;

    /// <summary>C = op(A) op(B): fp32 views in fp32; in bf16 weights from their copies, activations from theirs or rounded into scratch.</summary>
    private void Product(in GemmShape shape, ProductOperand a, Operand aKind, ProductOperand b, Operand bKind, ArrayView<float> c)
    {
        // Profiled, the product and its operands' rounding are stages of their own under the caller's.
        double flops = 2.0 * shape.M * shape.N * shape.K * shape.Batch;
        if (Precision == DevicePrecision.Fp32)
        {
            using (_kernels.SubStage("product", flops)) _gemm.Sgemm(shape, a.F32, b.F32, c);
            return;
        }
        var (a16, b16) = Operands16(shape, a, aKind, b, bKind);
        using (_kernels.SubStage("product", flops)) _gemm.GemmBf16(shape, a16, b16, c);
    }

    /// <summary>
    /// C (beta 0) = op(A) op(B) from bf16 operands as <see cref="Product"/>'s, stored in bf16: by the product itself with
    /// operands from their producers, else through fp32 scratch and a rounding pass (the same bits).
    /// </summary>
    private void ProductToBf16(in GemmShape shape, ProductOperand a, Operand aKind, ProductOperand b, Operand bKind, ArrayView<ushort> c16)
    {
        if (Precision != DevicePrecision.Bf16) throw new InvalidOperationException("a bf16 output is written by bf16 products only.");
        if (shape.Beta != 0f || shape.Ldc != shape.N) throw new ArgumentException("a bf16 output is overwritten, its rows contiguous.");
        double flops = 2.0 * shape.M * shape.N * shape.K * shape.Batch;
        var (a16, b16) = Operands16(shape, a, aKind, b, bKind);
        if (OperandsFromProducers)
        {
            using (_kernels.SubStage("product", flops)) _gemm.GemmBf16(shape, a16, b16, c16);
            return;
        }
        var c = _kernels.Scratch(ref _scratchC, shape.Extents().C, out _);
        using (_kernels.SubStage("product", flops)) _gemm.GemmBf16(shape, a16, b16, c);
        using (_kernels.SubStage("bf16 rounding")) _kernels.RoundToBf16(c, c16);
    }

    /// <summary>A and B in bf16: weights from their copies, activations from theirs or rounded into scratch.</summary>
    private (ArrayView<ushort> A, ArrayView<ushort> B) Operands16(in GemmShape shape, ProductOperand a, Operand aKind, ProductOperand b, Operand bKind)
    {
        var (aFloats, bFloats, _) = shape.Extents();
        ArrayView<ushort> a16 = aKind == Weight ? CopyOf(a.F32) : a.B16, b16 = bKind == Weight ? CopyOf(b.F32) : b.B16;
        bool roundA = aKind != Weight && !a.HasBf16, roundB = bKind != Weight && !b.HasBf16;
        if (roundA || roundB)
            using (_kernels.SubStage("bf16 rounding"))
            {
                if (roundA) a16 = Rounded(a.F32.SubView(0, aFloats), ref _scratchA);
                if (roundB) b16 = Rounded(b.F32.SubView(0, bFloats), ref _scratchB);
            }
        return (a16, b16);
    }

    /// <summary><paramref name="values"/> rounded into the scratch buffer (grown to fit; growing waits for the queue).</summary>
    private ArrayView<ushort> Rounded(ArrayView<float> values, ref MemoryBuffer1D<ushort, Stride1D.Dense>? scratch)
    {
        var view = _kernels.Scratch(ref scratch, values.Length, out _);
        _kernels.RoundToBf16(values, view);
        return view;
    }

    /// <summary>The bf16 copy of a weight: the same elements of the copy of the master view that holds it (found by device address).</summary>
    private ArrayView<ushort> CopyOf(ArrayView<float> weight)
    {
        long start = weight.LoadEffectiveAddressAsPtr().ToInt64();
        foreach (var (master, copy) in _copies)
        {
            long offset = (start - master.LoadEffectiveAddressAsPtr().ToInt64()) / sizeof(float);
            if (start >= master.LoadEffectiveAddressAsPtr().ToInt64() && offset + weight.Length <= master.Length)
                return copy.View.SubView(offset, weight.Length);
        }
        throw new InvalidOperationException("a bf16 product reads a weight that has no bf16 copy (KeepBf16Copies was not given its master).");
    }

    /// <summary>Frees the bf16 copies and the scratch buffers (the GEMM stays the caller's).</summary>
    public void Dispose()
    {
        foreach (var (_, copy) in _copies) copy.Dispose();
        _copies.Clear();
        _scratchA?.Dispose();
        _scratchB?.Dispose();
        _ones?.Dispose();
        _scratchC?.Dispose();
        (_scratchA, _scratchB, _ones, _scratchC) = (null, null, null, null);
        Attention.Dispose();
    }
}
