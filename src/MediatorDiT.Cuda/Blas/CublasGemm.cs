using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using MediatorDiT.Devices;

namespace MediatorDiT.Cuda.Blas;

/// <summary>
/// <see cref="IDeviceGemm"/> by cuBLAS on a CUDA accelerator: one handle bound to the accelerator's default stream
/// (so products queue behind the ILGPU kernels), CUBLAS_DEFAULT_MATH (fp32 stays fp32: no TF32), alpha and beta passed
/// from the host, and on Hopper and later a workspace of its own of <see cref="RecommendedWorkspaceBytes"/> (cuBLAS's
/// default pool is 4 MiB; NVIDIA recommends at least 32 MiB there, where more kernels, e.g. split-K, need room).
/// fp32 products go to cublasSgemm_v2 / cublasSgemmStridedBatched; the GemmBf16 overloads take bf16 operands with
/// fp32 accumulation and an fp32 or bf16 output through cublasGemmEx / cublasGemmStridedBatchedEx (CUBLAS_COMPUTE_32F). Row-major
/// shapes are mapped by <see cref="CublasCall.For"/>.
/// </summary>
internal sealed unsafe class CublasGemm : IDeviceGemm
{
    private readonly CublasApi _api;
    private readonly MemoryBuffer1D<byte, Stride1D.Dense>? _workspace;
    private IntPtr _handle;

    /// <summary>
    /// A cuBLAS handle on <paramref name="accelerator"/>'s default stream, from the library at <paramref name="cublasPath"/>,
    /// with a workspace of <paramref name="workspaceBytes"/> (default: <see cref="RecommendedWorkspaceBytes"/> for the
    /// card; 0 keeps cuBLAS's own pool).
    /// </summary>
    public CublasGemm(CudaAccelerator accelerator, string cublasPath, long? workspaceBytes = null)
    {
        long bytes = workspaceBytes ?? RecommendedWorkspaceBytes(accelerator.Architecture.Major);
        ArgumentOutOfRangeException.ThrowIfNegative(bytes, nameof(workspaceBytes));
        _api = CublasApi.Load(cublasPath);
        IntPtr handle;
        CublasErrors.Check(_api.Create(&handle), "cublasCreate_v2");
        _handle = handle;
        // The stream first: setting a stream returns the handle to cuBLAS's default workspace pool.
        CublasErrors.Check(_api.SetStream(_handle, ((CudaStream)accelerator.DefaultStream).StreamPtr), "cublasSetStream_v2");
        CublasErrors.Check(_api.SetMathMode(_handle, CublasApi.DefaultMath), "cublasSetMathMode");
        if (bytes > 0 && _api.SetWorkspace != null)
        {
            _workspace = accelerator.Allocate1D<byte>(bytes);
            CublasErrors.Check(_api.SetWorkspace(_handle, _workspace.AsContiguous().LoadEffectiveAddressAsPtr(), (nuint)bytes), "cublasSetWorkspace_v2");
            WorkspaceBytes = bytes;
        }
    }

    /// <summary>The workspace this handle was given, in bytes; 0 where it uses cuBLAS's own pool.</summary>
    public long WorkspaceBytes { get; }

    /// <summary>
    /// The workspace to give cuBLAS on a card of compute capability <paramref name="major"/>.x: 32 MiB from Hopper (9.x)
    /// on, as NVIDIA's cuBLAS guide recommends there; 0 (cuBLAS's own 4 MiB pool, the recommendation) before it.
    /// </summary>
    public static long RecommendedWorkspaceBytes(int major) => major >= 9 ? 32L << 20 : 0;

    /// <summary>
    /// cuBLAS on <paramref name="accelerator"/> with the library <see cref="CudaLibraries.Locate()"/> finds and the
    /// workspace of the constructor; a sentence when there is none.
    /// </summary>
    public static CublasGemm Create(CudaAccelerator accelerator, long? workspaceBytes = null)
    {
        var report = CudaLibraries.Locate();
        return new CublasGemm(accelerator, report.Cublas ?? throw new MediatorDiTException(
            $"no cuBLAS (libcublas.so.13 or .12) was found {report.Places}."), workspaceBytes);
    }

    /// <summary>
    /// Checks the shape; false for an empty product, else cuBLAS's column-major call and the device addresses of its
    /// operands, B's first (C^T = B^T A^T, <see cref="CublasCall"/>).
    /// </summary>
    private static bool Prepare<T, TC>(in GemmShape shape, ArrayView<T> a, ArrayView<T> b, ArrayView<TC> c, out CublasCall call,
        out IntPtr first, out IntPtr second, out IntPtr pc) where T : unmanaged where TC : unmanaged
    {
        shape.Check(a.Length, b.Length, c.Length);
        (call, first, second, pc) = (default, IntPtr.Zero, IntPtr.Zero, IntPtr.Zero);
        if (shape.M == 0 || shape.N == 0 || shape.Batch == 0) return false;
        call = CublasCall.For(shape);
        (first, second, pc) = (b.LoadEffectiveAddressAsPtr(), a.LoadEffectiveAddressAsPtr(), c.LoadEffectiveAddressAsPtr());
        return true;
    }

    public void Sgemm(in GemmShape shape, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c)
    {
        if (!Prepare(shape, a, b, c, out var call, out var first, out var second, out var pc)) return;
        float alpha = shape.Alpha, beta = shape.Beta;
        if (call.Batch == 1)
            CublasErrors.Check(_api.Sgemm(_handle, call.OpFirst, call.OpSecond, call.M, call.N, call.K, &alpha, first, call.LdFirst, second, call.LdSecond,
                &beta, pc, call.Ldc), "cublasSgemm_v2");
        else
            CublasErrors.Check(_api.SgemmStridedBatched(_handle, call.OpFirst, call.OpSecond, call.M, call.N, call.K, &alpha, first, call.LdFirst,
                call.StrideFirst, second, call.LdSecond, call.StrideSecond, &beta, pc, call.Ldc, call.StrideC, call.Batch), "cublasSgemmStridedBatched");
    }

    /// <summary>
    /// The product with A and B in bf16 (the upper 16 bits of each float, as ushorts), accumulated and written in fp32:
    /// C = alpha op(A) op(B) + beta C.
    /// </summary>
    public void GemmBf16(in GemmShape shape, ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<float> c)
    {
        if (Prepare(shape, a, b, c, out var call, out var first, out var second, out var pc)) GemmEx(shape, call, first, second, pc, CublasApi.R32F);
    }

    /// <summary>
    /// The product with A and B in bf16, accumulated in fp32 and written in bf16 (C's type CUDA_R_16BF: cuBLAS rounds
    /// each fp32 result once as it stores it): C = alpha op(A) op(B) + beta C.
    /// </summary>
    public void GemmBf16(in GemmShape shape, ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> c)
    {
        if (Prepare(shape, a, b, c, out var call, out var first, out var second, out var pc)) GemmEx(shape, call, first, second, pc, CublasApi.R16BF);
    }

    /// <summary>cublasGemmEx (one item) or cublasGemmStridedBatchedEx: bf16 operands, fp32 compute and scalars, C of <paramref name="cType"/>.</summary>
    private void GemmEx(in GemmShape shape, in CublasCall call, IntPtr first, IntPtr second, IntPtr pc, int cType)
    {
        float alpha = shape.Alpha, beta = shape.Beta;
        if (call.Batch == 1)
            CublasErrors.Check(_api.GemmEx(_handle, call.OpFirst, call.OpSecond, call.M, call.N, call.K, &alpha, first, CublasApi.R16BF, call.LdFirst,
                second, CublasApi.R16BF, call.LdSecond, &beta, pc, cType, call.Ldc, CublasApi.Compute32F, CublasApi.GemmDefault), "cublasGemmEx");
        else
            CublasErrors.Check(_api.GemmStridedBatchedEx(_handle, call.OpFirst, call.OpSecond, call.M, call.N, call.K, &alpha, first, CublasApi.R16BF,
                call.LdFirst, call.StrideFirst, second, CublasApi.R16BF, call.LdSecond, call.StrideSecond, &beta, pc, cType, call.Ldc, call.StrideC,
                call.Batch, CublasApi.Compute32F, CublasApi.GemmDefault), "cublasGemmStridedBatchedEx");
    }

    public void Dispose()
    {
        if (_handle == IntPtr.Zero) return;
        _api.Destroy(_handle);
        _handle = IntPtr.Zero;
        _workspace?.Dispose(); // after the handle, which may still have work queued in it
    }
}

/// <summary>The matrix products an accelerator gets: cuBLAS on a CUDA device, the ILGPU kernels elsewhere.</summary>
internal static class DeviceGemms
{
    public static IDeviceGemm For(Accelerator accelerator) =>
        accelerator is CudaAccelerator cuda ? CublasGemm.Create(cuda) : new IlgpuGemm(accelerator);
}
