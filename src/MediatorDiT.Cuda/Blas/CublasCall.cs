namespace MediatorDiT.Cuda.Blas;

/// <summary>
/// A row-major <see cref="GemmShape"/> as the column-major call cuBLAS takes. A row-major matrix X (r, c) with rows ld
/// apart is, read column-major, X^T (c, r) with leading dimension ld. So the row-major C = op(A) op(B) is the
/// column-major C^T = op(B)^T op(A)^T: cuBLAS is asked for the (N, M) product whose first operand is the row-major B
/// (with B's transpose flag) and whose second is the row-major A (with A's), sizes swapped (m' = N, n' = M, k' = K),
/// each leading dimension and batch stride kept with its matrix. Nothing is copied or transposed in memory.
/// </summary>
/// <remarks>
/// OpFirst and OpSecond are the cublasOperation_t of the first operand (the row-major B) and of the second (the
/// row-major A); M, N, K the column-major sizes; LdFirst/StrideFirst and LdSecond/StrideSecond those operands' leading
/// dimensions and batch strides; Ldc, StrideC and Batch C's.
/// </remarks>
internal readonly record struct CublasCall(int OpFirst, int OpSecond, int M, int N, int K, int LdFirst, long StrideFirst, int LdSecond,
    long StrideSecond, int Ldc, long StrideC, int Batch)
{
    /// <summary>cublasOperation_t: CUBLAS_OP_N, CUBLAS_OP_T.</summary>
    public const int OpN = 0, OpT = 1;

    /// <summary>The column-major call for a row-major product.</summary>
    public static CublasCall For(in GemmShape s) =>
        new(s.TransB ? OpT : OpN, s.TransA ? OpT : OpN, s.N, s.M, s.K, s.Ldb, s.StrideB, s.Lda, s.StrideA, s.Ldc, s.StrideC, s.Batch);
}
