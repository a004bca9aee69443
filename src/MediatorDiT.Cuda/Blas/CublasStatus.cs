namespace MediatorDiT.Cuda.Blas;

/// <summary>cublasStatus_t: what a cuBLAS call returns (cublas_api.h).</summary>
internal enum CublasStatus
{
    Success = 0,
    NotInitialized = 1,
    AllocFailed = 3,
    InvalidValue = 7,
    ArchMismatch = 8,
    MappingError = 11,
    ExecutionFailed = 13,
    InternalError = 14,
    NotSupported = 15,
    LicenseError = 16,
}

/// <summary>The sentence a failed cuBLAS call becomes.</summary>
internal static class CublasErrors
{
    /// <summary>"cuBLAS {call} failed: {what the status means} (status N)."</summary>
    public static string Describe(string call, int status)
    {
        string meaning = (CublasStatus)status switch
        {
            CublasStatus.Success => "it succeeded",
            CublasStatus.NotInitialized => "the library was not initialised (no usable device, or the driver did not start)",
            CublasStatus.AllocFailed => "device memory could not be allocated",
            CublasStatus.InvalidValue => "an argument was out of range (a size, leading dimension or data type)",
            CublasStatus.ArchMismatch => "the GPU lacks a feature the call needs (bf16 products need compute capability 8.0 or later)",
            CublasStatus.MappingError => "a device buffer could not be accessed",
            CublasStatus.ExecutionFailed => "the kernel failed to run on the GPU",
            CublasStatus.InternalError => "an internal cuBLAS operation failed",
            CublasStatus.NotSupported => "this combination of types and parameters is not supported",
            CublasStatus.LicenseError => "the license check failed",
            _ => "an unknown status was returned",
        };
        return $"cuBLAS {call} failed: {meaning} (status {status}).";
    }

    /// <summary>Throws a <see cref="MediatorDiTException"/> with <see cref="Describe"/>'s sentence unless <paramref name="status"/> is success.</summary>
    public static void Check(int status, string call)
    {
        if (status != (int)CublasStatus.Success) throw new MediatorDiTException(Describe(call, status));
    }
}
