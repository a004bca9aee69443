namespace MediatorDiT.Cuda.Distributed;

/// <summary>ncclResult_t: what an NCCL call returns (nccl.h).</summary>
internal enum NcclResult
{
    Success = 0,
    UnhandledCudaError = 1,
    SystemError = 2,
    InternalError = 3,
    InvalidArgument = 4,
    InvalidUsage = 5,
    RemoteError = 6,
    InProgress = 7,
}

/// <summary>The sentence a failed NCCL call becomes.</summary>
internal static class NcclErrors
{
    /// <summary>
    /// "NCCL {call} failed: {what the result means} (result N: {NCCL's own string})." The library's string
    /// (ncclGetErrorString) is added when there is one.
    /// </summary>
    public static string Describe(string call, int result, string? libraryText = null)
    {
        string meaning = (NcclResult)result switch
        {
            NcclResult.Success => "it succeeded",
            NcclResult.UnhandledCudaError => "a CUDA call inside NCCL failed (a device error, or memory that is not the communicator's device's)",
            NcclResult.SystemError => "a system call failed (sockets, shared memory or another rank's process)",
            NcclResult.InternalError => "an internal NCCL check failed",
            NcclResult.InvalidArgument => "an argument was invalid (a null buffer, a count, a rank or the data type)",
            NcclResult.InvalidUsage => "the call was used wrongly (ranks that disagree on the operation, or a destroyed communicator)",
            NcclResult.RemoteError => "a remote rank failed or its network connection broke",
            NcclResult.InProgress => "the operation is still in progress on a non-blocking communicator",
            _ => "an unknown result was returned",
        };
        string text = string.IsNullOrWhiteSpace(libraryText) ? "" : $": {libraryText.Trim().TrimEnd('.')}";
        return $"NCCL {call} failed: {meaning} (result {result}{text}).";
    }
}
