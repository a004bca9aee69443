using System.Runtime.InteropServices;
using MediatorDiT.Devices;

namespace MediatorDiT.Cuda.Distributed;

/// <summary>ncclUniqueId: the 128 opaque bytes rank 0 makes and every rank passes to ncclCommInitRank (by value).</summary>
[StructLayout(LayoutKind.Sequential, Size = Bytes)]
internal unsafe struct NcclUniqueId
{
    /// <summary>NCCL_UNIQUE_ID_BYTES.</summary>
    public const int Bytes = 128;

    public fixed byte Internal[Bytes];
}

/// <summary>
/// The NCCL entry points the GPU ranks call, bound by hand from libnccl.so.2, which <see cref="CudaLibraries.Find(string)"/>
/// finds in the same folders and order as the driver and cuBLAS: version, unique id, communicator init, destroy and
/// abort, error strings, point-to-point send and receive, group start and end, and broadcast. Each returns an
/// ncclResult_t; <see cref="Check"/> turns a failure into a sentence with NCCL's own error string.
/// </summary>
internal sealed unsafe class NcclApi
{
    /// <summary>The library's file name (the soname of NCCL 2).</summary>
    public const string File = "libnccl.so.2";

    /// <summary>ncclDataType_t ncclFloat32.</summary>
    public const int Float32 = 7;

    public readonly delegate* unmanaged<int*, int> GetVersion;
    public readonly delegate* unmanaged<NcclUniqueId*, int> GetUniqueId;
    public readonly delegate* unmanaged<IntPtr*, int, NcclUniqueId, int, int> CommInitRank;
    public readonly delegate* unmanaged<IntPtr, int> CommDestroy;
    public readonly delegate* unmanaged<IntPtr, int> CommAbort;
    public readonly delegate* unmanaged<int, IntPtr> GetErrorString;
    public readonly delegate* unmanaged<IntPtr, nuint, int, int, IntPtr, IntPtr, int> Send;
    public readonly delegate* unmanaged<IntPtr, nuint, int, int, IntPtr, IntPtr, int> Recv;
    public readonly delegate* unmanaged<int> GroupStart;
    public readonly delegate* unmanaged<int> GroupEnd;
    public readonly delegate* unmanaged<IntPtr, IntPtr, nuint, int, int, IntPtr, IntPtr, int> Broadcast;

    private NcclApi(IntPtr library, string path)
    {
        Path = path;
        IntPtr Get(string name) => NativeLibrary.TryGetExport(library, name, out var address) ? address
            : throw new MediatorDiTException($"the NCCL library at {path} has no {name}; it is older than the supported 2.7.");
        GetVersion = (delegate* unmanaged<int*, int>)Get("ncclGetVersion");
        GetUniqueId = (delegate* unmanaged<NcclUniqueId*, int>)Get("ncclGetUniqueId");
        CommInitRank = (delegate* unmanaged<IntPtr*, int, NcclUniqueId, int, int>)Get("ncclCommInitRank");
        CommDestroy = (delegate* unmanaged<IntPtr, int>)Get("ncclCommDestroy");
        CommAbort = (delegate* unmanaged<IntPtr, int>)Get("ncclCommAbort");
        GetErrorString = (delegate* unmanaged<int, IntPtr>)Get("ncclGetErrorString");
        Send = (delegate* unmanaged<IntPtr, nuint, int, int, IntPtr, IntPtr, int>)Get("ncclSend");
        Recv = (delegate* unmanaged<IntPtr, nuint, int, int, IntPtr, IntPtr, int>)Get("ncclRecv");
        GroupStart = (delegate* unmanaged<int>)Get("ncclGroupStart");
        GroupEnd = (delegate* unmanaged<int>)Get("ncclGroupEnd");
        Broadcast = (delegate* unmanaged<IntPtr, IntPtr, nuint, int, int, IntPtr, IntPtr, int>)Get("ncclBroadcast");
    }

    /// <summary>Where the library was loaded from.</summary>
    public string Path { get; }

    /// <summary>The sentence for a missing libnccl.so.2, naming the places searched.</summary>
    public static string NotFound(CudaFileReport report) =>
        $"NCCL ({File}) was not found {report.Places}; install the nvidia-nccl-cu13 (or -cu12) pip wheel or set {CudaLibraries.OverrideVariable} to its folder.";

    /// <summary>Finds libnccl.so.2 in <paramref name="environment"/> (null: this process's) and binds it; one sentence when it is missing or unusable.</summary>
    public static NcclApi Load(CudaSearchEnvironment? environment = null)
    {
        var report = CudaLibraries.Find(File, environment ?? CudaSearchEnvironment.Process);
        if (report.Path is null) throw new MediatorDiTException(NotFound(report));
        return Load(report.Path);
    }

    /// <summary>Loads the NCCL at <paramref name="path"/> and binds its entry points.</summary>
    public static NcclApi Load(string path)
    {
        if (!NativeLibrary.TryLoad(path, out var library))
            throw new MediatorDiTException($"NCCL at {path} could not be loaded (a missing dependency such as the CUDA runtime, or another architecture).");
        return new NcclApi(library, path);
    }

    /// <summary>The library's version, e.g. "2.27.3" (ncclGetVersion's code: major 10000 + minor 100 + patch since 2.9).</summary>
    public string Version()
    {
        int code;
        Check(GetVersion(&code), "ncclGetVersion");
        return VersionText(code);
    }

    /// <summary>An NCCL version code in words: 2.9 and later code major*10000 + minor*100 + patch, older ones major*1000 + minor*100 + patch.</summary>
    public static string VersionText(int code) =>
        code >= 10000 ? $"{code / 10000}.{code / 100 % 100}.{code % 100}" : $"{code / 1000}.{code / 100 % 10}.{code % 100}";

    /// <summary>Throws a <see cref="MediatorDiTException"/> with <see cref="NcclErrors.Describe"/>'s sentence unless <paramref name="result"/> is success.</summary>
    public void Check(int result, string call)
    {
        if (result == (int)NcclResult.Success) return;
        string? text = null;
        try
        {
            IntPtr s = GetErrorString(result);
            text = s == IntPtr.Zero ? null : Marshal.PtrToStringUTF8(s);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // The string is a courtesy; the result code alone still names the failure.
        }
        throw new MediatorDiTException(NcclErrors.Describe(call, result, text));
    }
}
