using System.Runtime.InteropServices;

namespace MediatorDiT.Cuda.Blas;

/// <summary>
/// The cuBLAS entry points the device backend calls, bound by hand from the library <see cref="Devices.CudaLibraries"/>
/// found (libcublas.so.13 or .12): handle, stream, workspace, math mode, SGEMM and GemmEx, single and strided-batched.
/// Each returns a cublasStatus_t; <see cref="CublasErrors.Check"/> turns a failure into a sentence.
/// </summary>
internal sealed unsafe class CublasApi
{
    /// <summary>cudaDataType_t values: CUDA_R_32F, CUDA_R_16BF.</summary>
    public const int R32F = 0, R16BF = 14;

    /// <summary>cublasComputeType_t CUBLAS_COMPUTE_32F: fp32 accumulation, no TF32.</summary>
    public const int Compute32F = 68;

    /// <summary>cublasMath_t CUBLAS_DEFAULT_MATH: no TF32 tensor-core rounding of fp32 inputs.</summary>
    public const int DefaultMath = 0;

    /// <summary>cublasGemmAlgo_t CUBLAS_GEMM_DEFAULT.</summary>
    public const int GemmDefault = -1;

    public readonly delegate* unmanaged<IntPtr*, int> Create;
    public readonly delegate* unmanaged<IntPtr, int> Destroy;
    public readonly delegate* unmanaged<IntPtr, IntPtr, int> SetStream;
    public readonly delegate* unmanaged<IntPtr, int, int> SetMathMode;
    /// <summary>cublasSetWorkspace_v2 (handle, device pointer, bytes); null in a library without it (it came in cuBLAS 11).</summary>
    public readonly delegate* unmanaged<IntPtr, IntPtr, nuint, int> SetWorkspace;
    public readonly delegate* unmanaged<IntPtr, int, int, int, int, int, float*, IntPtr, int, IntPtr, int, float*, IntPtr, int, int> Sgemm;
    public readonly delegate* unmanaged<IntPtr, int, int, int, int, int, float*, IntPtr, int, long, IntPtr, int, long, float*, IntPtr, int, long, int, int>
        SgemmStridedBatched;
    public readonly delegate* unmanaged<IntPtr, int, int, int, int, int, void*, IntPtr, int, int, IntPtr, int, int, void*, IntPtr, int, int, int, int, int>
        GemmEx;
    public readonly delegate* unmanaged<IntPtr, int, int, int, int, int, void*, IntPtr, int, int, long, IntPtr, int, int, long, void*, IntPtr, int, int, long,
        int, int, int, int> GemmStridedBatchedEx;

    private CublasApi(IntPtr library)
    {
        IntPtr Get(string name) => NativeLibrary.TryGetExport(library, name, out var address) ? address
            : throw new MediatorDiTException($"the cuBLAS library has no {name}; it is older than the supported 12.");
        Create = (delegate* unmanaged<IntPtr*, int>)Get("cublasCreate_v2");
        Destroy = (delegate* unmanaged<IntPtr, int>)Get("cublasDestroy_v2");
        SetStream = (delegate* unmanaged<IntPtr, IntPtr, int>)Get("cublasSetStream_v2");
        SetMathMode = (delegate* unmanaged<IntPtr, int, int>)Get("cublasSetMathMode");
        SetWorkspace = NativeLibrary.TryGetExport(library, "cublasSetWorkspace_v2", out var setWorkspace)
            ? (delegate* unmanaged<IntPtr, IntPtr, nuint, int>)setWorkspace : null;
        Sgemm = (delegate* unmanaged<IntPtr, int, int, int, int, int, float*, IntPtr, int, IntPtr, int, float*, IntPtr, int, int>)Get("cublasSgemm_v2");
        SgemmStridedBatched = (delegate* unmanaged<IntPtr, int, int, int, int, int, float*, IntPtr, int, long, IntPtr, int, long, float*, IntPtr, int, long, int, int>)
            Get("cublasSgemmStridedBatched");
        GemmEx = (delegate* unmanaged<IntPtr, int, int, int, int, int, void*, IntPtr, int, int, IntPtr, int, int, void*, IntPtr, int, int, int, int, int>)
            Get("cublasGemmEx");
        GemmStridedBatchedEx = (delegate* unmanaged<IntPtr, int, int, int, int, int, void*, IntPtr, int, int, long, IntPtr, int, int, long, void*, IntPtr, int,
            int, long, int, int, int, int>)Get("cublasGemmStridedBatchedEx");
    }

    /// <summary>Loads the cuBLAS at <paramref name="path"/> (from <see cref="Devices.CudaLibraries.Locate()"/>) and binds its entry points.</summary>
    public static CublasApi Load(string path)
    {
        if (!NativeLibrary.TryLoad(path, out var library))
            throw new MediatorDiTException($"cuBLAS at {path} could not be loaded (a missing dependency such as libcublasLt, or another architecture).");
        return new CublasApi(library);
    }
}
