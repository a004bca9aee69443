using ILGPU;

namespace MediatorDiT.Cuda.Blas;

/// <summary>
/// Row-major matrix products on the device, the one entry point the device layers use (the device twin of
/// Tensors.Gemm): for each of <see cref="GemmShape.Batch"/> items i,
/// C_i[m,n] = alpha op(A_i)[m,k] op(B_i)[k,n] + beta C_i[m,n], with A_i at a + i strideA (likewise B, C), in float32
/// (<see cref="Sgemm"/>) or from bf16 operands with float32 accumulation and a float32 or bf16 output (the
/// <see cref="GemmBf16(in GemmShape, ArrayView{ushort}, ArrayView{ushort}, ArrayView{float})"/> overloads).
/// Products are queued on the accelerator's default stream. Implementations: <see cref="IlgpuGemm"/> (every
/// accelerator) and <see cref="CublasGemm"/> (CUDA devices).
/// </summary>
internal interface IDeviceGemm : IDisposable
{
    /// <summary>Queues the float32 products <paramref name="shape"/> describes over the three views.</summary>
    void Sgemm(in GemmShape shape, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c);

    /// <summary>
    /// Queues the products with A and B in bf16 (Kernels.Bf16's bits, as ushorts; strides and leading dimensions in
    /// elements, as for <see cref="Sgemm"/>), accumulated and written in float32.
    /// </summary>
    void GemmBf16(in GemmShape shape, ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<float> c);

    /// <summary>
    /// As the float32-output overload, C written in bf16: each element's float32 result alpha sum (+ beta C, C widened)
    /// rounded to bf16 once (to nearest, ties to even), as PyTorch's bf16 products store theirs.
    /// </summary>
    void GemmBf16(in GemmShape shape, ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> c);
}

/// <summary>
/// One (strided-batched) row-major product: op(A) (M, K), op(B) (K, N), C (M, N). With TransA the stored A is (K, M)
/// with rows Lda apart (Lda &gt;= M), otherwise (M, K) with Lda &gt;= K; likewise for B; C's rows are Ldc apart
/// (Ldc &gt;= N). Beta = 0 overwrites C (NaN in C does not propagate), as the CPU's Gemm.
/// </summary>
internal readonly record struct GemmShape(bool TransA, bool TransB, int M, int N, int K, float Alpha, int Lda, int Ldb, float Beta, int Ldc,
    long StrideA = 0, long StrideB = 0, long StrideC = 0, int Batch = 1)
{
    /// <summary>A single product.</summary>
    public static GemmShape Single(bool transA, bool transB, int m, int n, int k, float alpha, int lda, int ldb, float beta, int ldc) =>
        new(transA, transB, m, n, k, alpha, lda, ldb, beta, ldc);

    /// <summary>Floats the last item of each operand reaches, from the view's start: A, B and C must hold at least these.</summary>
    public (long A, long B, long C) Extents()
    {
        long last = Math.Max(0, Batch - 1);
        long a = TransA ? Span(K, M, Lda) : Span(M, K, Lda);
        long b = TransB ? Span(N, K, Ldb) : Span(K, N, Ldb);
        return (last * StrideA + a, last * StrideB + b, last * StrideC + Span(M, N, Ldc));
    }

    private static long Span(int rows, int cols, int ld) => rows == 0 || cols == 0 ? 0 : (long)(rows - 1) * ld + cols;

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first inconsistent field, or a view that is too short.</summary>
    public void Check(long aLength, long bLength, long cLength)
    {
        if (M < 0 || N < 0 || K < 0 || Batch < 0) throw new ArgumentException($"GEMM sizes must not be negative (m {M}, n {N}, k {K}, batch {Batch}).");
        if (Lda < Math.Max(1, TransA ? M : K)) throw new ArgumentException($"lda {Lda} is below the stored A's row length {(TransA ? M : K)}.");
        if (Ldb < Math.Max(1, TransB ? K : N)) throw new ArgumentException($"ldb {Ldb} is below the stored B's row length {(TransB ? K : N)}.");
        if (Ldc < Math.Max(1, N)) throw new ArgumentException($"ldc {Ldc} is below C's row length {N}.");
        if (StrideA < 0 || StrideB < 0 || StrideC < 0) throw new ArgumentException("GEMM batch strides must not be negative.");
        var (ea, eb, ec) = Extents();
        if (Batch > 0 && M > 0 && N > 0 && (aLength < ea || bLength < eb || cLength < ec))
            throw new ArgumentException($"a GEMM view is too short: A needs {ea} floats (has {aLength}), B {eb} ({bLength}), C {ec} ({cLength}).");
    }
}
