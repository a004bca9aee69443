using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;

namespace MediatorDiT.Training.Distributed;

/// <summary>
/// The few MPI functions the communicator calls, bound at run time from MPICH's libmpich.so.12 (Debian's
/// `mpich` package, set up by scripts/setup.sh). MPICH's handles are plain integers, fixed by its mpi.h; the
/// values below are those of MPICH 3 and 4 (the ABI behind libmpich.so.12).
/// </summary>
internal sealed unsafe class MpiLibrary
{
    public const int CommWorld = 0x44000000;
    public const int Byte = 0x4c00010d;
    public const int Int = 0x4c000405;
    public const int OpMax = 0x58000001;
    public const int ErrorsReturn = 0x54000001;
    public const int ThreadMultiple = 3;
    public const int Success = 0;
    private static readonly nint StatusIgnore = 1;

    private static readonly string[] Candidates = ["libmpich.so.12", "libmpich.so", "libmpi.so.12"];

    private readonly delegate* unmanaged<int*, int> _initialized;
    private readonly delegate* unmanaged<int*, nint, int, int*, int> _initThread;
    private readonly delegate* unmanaged<int, int*, int> _commRank;
    private readonly delegate* unmanaged<int, int*, int> _commSize;
    private readonly delegate* unmanaged<int, int*, int> _commDup;
    private readonly delegate* unmanaged<int, int, int> _commSetErrhandler;
    private readonly delegate* unmanaged<void*, int, int, void*, int, int, int, int*, int> _iallgather;
    private readonly delegate* unmanaged<void*, int, int, int, int, int*, int> _ibcast;
    private readonly delegate* unmanaged<void*, void*, int, int, int, int, int*, int> _iallreduce;
    private readonly delegate* unmanaged<int*, int*, nint, int> _test;
    private readonly delegate* unmanaged<void*, int, int, int, int, int, int*, int> _isend;
    private readonly delegate* unmanaged<void*, int, int, int, int, int, int*, int> _irecv;
    private readonly delegate* unmanaged<int> _finalize;
    private readonly delegate* unmanaged<int, int, int> _abort;
    private readonly delegate* unmanaged<byte*, int*, int> _libraryVersion;
    private readonly delegate* unmanaged<int, byte*, int*, int> _errorString;

    public string Path { get; }

    private MpiLibrary(nint handle, string path)
    {
        Path = path;
        nint F(string name) => NativeLibrary.TryGetExport(handle, name, out var f) ? f
            : throw new MediatorDiTException($"{path} has no function {name}; it is not an MPICH library (install Debian's mpich package).");
        _initialized = (delegate* unmanaged<int*, int>)F("MPI_Initialized");
        _initThread = (delegate* unmanaged<int*, nint, int, int*, int>)F("MPI_Init_thread");
        _commRank = (delegate* unmanaged<int, int*, int>)F("MPI_Comm_rank");
        _commSize = (delegate* unmanaged<int, int*, int>)F("MPI_Comm_size");
        _commDup = (delegate* unmanaged<int, int*, int>)F("MPI_Comm_dup");
        _commSetErrhandler = (delegate* unmanaged<int, int, int>)F("MPI_Comm_set_errhandler");
        _iallgather = (delegate* unmanaged<void*, int, int, void*, int, int, int, int*, int>)F("MPI_Iallgather");
        _ibcast = (delegate* unmanaged<void*, int, int, int, int, int*, int>)F("MPI_Ibcast");
        _iallreduce = (delegate* unmanaged<void*, void*, int, int, int, int, int*, int>)F("MPI_Iallreduce");
        _test = (delegate* unmanaged<int*, int*, nint, int>)F("MPI_Test");
        _isend = (delegate* unmanaged<void*, int, int, int, int, int, int*, int>)F("MPI_Isend");
        _irecv = (delegate* unmanaged<void*, int, int, int, int, int, int*, int>)F("MPI_Irecv");
        _finalize = (delegate* unmanaged<int>)F("MPI_Finalize");
        _abort = (delegate* unmanaged<int, int, int>)F("MPI_Abort");
        _libraryVersion = (delegate* unmanaged<byte*, int*, int>)F("MPI_Get_library_version");
        _errorString = (delegate* unmanaged<int, byte*, int*, int>)F("MPI_Error_string");
    }

    /// <summary>Loads MPICH (MDIT_MPI_LIBRARY names another file) or throws one sentence saying how to install it.</summary>
    public static MpiLibrary Load()
    {
        string? forced = Environment.GetEnvironmentVariable("MDIT_MPI_LIBRARY");
        foreach (string name in forced is { Length: > 0 } ? [forced] : Candidates)
        {
            if (NativeLibrary.TryLoad(name, Assembly.GetExecutingAssembly(), DllImportSearchPath.SafeDirectories | DllImportSearchPath.UseDllDirectoryForDependencies, out var handle)
                || NativeLibrary.TryLoad(name, out handle))
                return new MpiLibrary(handle, name);
        }
        if (NativeLibrary.TryLoad("libmpi.so.40", out _))
            throw new MediatorDiTException(
                "found Open MPI (libmpi.so.40) but not MPICH (libmpich.so.12); mdit's MPI binding is for MPICH: install Debian's mpich package (scripts/setup.sh does) and launch with its mpiexec, or launch with torchrun-style variables instead.");
        throw new MediatorDiTException(forced is { Length: > 0 }
            ? $"the MPI library '{forced}' named by MDIT_MPI_LIBRARY cannot be loaded."
            : "the MPI library libmpich.so.12 is not installed; install Debian's mpich package (scripts/setup.sh does) or launch without mpiexec.");
    }

    public bool Initialized()
    {
        int flag;
        Check(_initialized(&flag), "MPI_Initialized");
        return flag != 0;
    }

    public int InitThread(int required)
    {
        int provided;
        Check(_initThread(null, 0, required, &provided), "MPI_Init_thread");
        return provided;
    }

    public int CommRank(int comm)
    {
        int r;
        Check(_commRank(comm, &r), "MPI_Comm_rank");
        return r;
    }

    public int CommSize(int comm)
    {
        int s;
        Check(_commSize(comm, &s), "MPI_Comm_size");
        return s;
    }

    public int CommDup(int comm)
    {
        int dup;
        Check(_commDup(comm, &dup), "MPI_Comm_dup");
        return dup;
    }

    public void SetErrorsReturn(int comm) => Check(_commSetErrhandler(comm, ErrorsReturn), "MPI_Comm_set_errhandler");

    public int Iallgather(void* send, int count, void* receive, int comm, int* request) =>
        _iallgather(send, count, Byte, receive, count, Byte, comm, request);

    public int Ibcast(void* data, int count, int root, int comm, int* request) => _ibcast(data, count, Byte, root, comm, request);

    public int IallreduceMaxInt(int* send, int* receive, int comm, int* request) => _iallreduce(send, receive, 1, Int, OpMax, comm, request);

    public int Isend(void* data, int count, int dest, int tag, int comm, int* request) => _isend(data, count, Byte, dest, tag, comm, request);

    public int Irecv(void* data, int count, int source, int tag, int comm, int* request) => _irecv(data, count, Byte, source, tag, comm, request);

    public int Test(int* request, out bool done)
    {
        int flag;
        int rc = _test(request, &flag, StatusIgnore);
        done = flag != 0;
        return rc;
    }

    public int Finalize() => _finalize();

    public void Abort(int comm, int code) => _abort(comm, code);

    public string LibraryVersion()
    {
        var buffer = new byte[8192];
        int length;
        fixed (byte* p = buffer)
            if (_libraryVersion(p, &length) != Success) return "MPI";
        string text = Encoding.ASCII.GetString(buffer, 0, Math.Clamp(length, 0, buffer.Length)).TrimEnd('\0');
        // "MPICH Version:\t4.0.2" -> "MPICH 4.0.2"
        string first = string.Join(' ', text.Split('\n')[0].Replace("Version:", "", StringComparison.Ordinal)
            .Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries));
        return first.Length == 0 ? "MPI" : first;
    }

    public string ErrorString(int code)
    {
        var buffer = new byte[1024];
        int length;
        fixed (byte* p = buffer)
            if (_errorString(code, p, &length) != Success) return $"MPI error {code}";
        return Encoding.ASCII.GetString(buffer, 0, Math.Clamp(length, 0, buffer.Length)).TrimEnd('\0').Trim();
    }

    public void Check(int rc, string function)
    {
        if (rc != Success) throw new RankFailureException($"{function} failed: {ErrorString(rc).TrimEnd('.')}; the run cannot go on.");
    }
}
