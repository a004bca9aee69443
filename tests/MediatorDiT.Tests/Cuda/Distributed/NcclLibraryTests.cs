using MediatorDiT.Cuda.Distributed;
using MediatorDiT.Devices;
using MediatorDiT.Tests.Cli;

namespace MediatorDiT.Tests.Cuda.Distributed;

/// <summary>Finding libnccl.so.2 and the sentences NCCL's failures become; no GPU or NCCL needed.</summary>
public class NcclLibraryTests : IDisposable
{
    private readonly string _root = CliRunner.TempDir();

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static CudaSearchEnvironment Isolated(Dictionary<string, string> variables, params string[] sitePackages) => new()
    {
        Variable = name => variables.GetValueOrDefault(name),
        PythonSitePackages = () => sitePackages,
    };

    [Fact]
    public void AMissingLibrary_IsOneSentenceNamingThePlacesSearched()
    {
        var e = Assert.Throws<MediatorDiTException>(() => NcclTransport.Probe(Isolated(new() { ["MDIT_CUDA_LIB_DIR"] = _root })));
        Assert.Equal("NCCL (libnccl.so.2) was not found in MDIT_CUDA_LIB_DIR, on the loader path, CUDA_HOME or a Python environment's nvidia/*/lib; "
            + "install the nvidia-nccl-cu13 (or -cu12) pip wheel or set MDIT_CUDA_LIB_DIR to its folder.", e.Message);
    }

    [Fact]
    public void TheLibraryIsFoundInTheCudaSearchOrder_PipsNvidiaNcclLibLast()
    {
        string site = Path.Combine(_root, "venv/lib/python3.12/site-packages");
        string wheel = Path.Combine(site, "nvidia/nccl/lib");
        Directory.CreateDirectory(wheel);
        File.WriteAllBytes(Path.Combine(wheel, "libnccl.so.2"), []);
        string loader = Path.Combine(_root, "ld");
        Directory.CreateDirectory(loader);
        var report = CudaLibraries.Find("libnccl.so.2", Isolated(new() { ["LD_LIBRARY_PATH"] = loader }, site));
        Assert.Equal(Path.Combine(wheel, "libnccl.so.2"), report.Path);
        Assert.Equal([loader, wheel], report.Searched.Select(f => f.Folder));
        File.WriteAllBytes(Path.Combine(loader, "libnccl.so.2"), []);
        Assert.Equal(Path.Combine(loader, "libnccl.so.2"), CudaLibraries.Find("libnccl.so.2", Isolated(new() { ["LD_LIBRARY_PATH"] = loader }, site)).Path);
    }

    [Fact]
    public void AFileThatIsNoLibrary_IsOneSentence()
    {
        string fake = Path.Combine(_root, "libnccl.so.2");
        File.WriteAllText(fake, "not a shared object");
        var e = Assert.Throws<MediatorDiTException>(() => NcclTransport.Probe(Isolated(new() { ["MDIT_CUDA_LIB_DIR"] = _root })));
        Assert.Equal($"NCCL at {fake} could not be loaded (a missing dependency such as the CUDA runtime, or another architecture).", e.Message);
    }

    [Theory]
    [InlineData(1, "a CUDA call inside NCCL failed (a device error, or memory that is not the communicator's device's)")]
    [InlineData(2, "a system call failed (sockets, shared memory or another rank's process)")]
    [InlineData(3, "an internal NCCL check failed")]
    [InlineData(4, "an argument was invalid (a null buffer, a count, a rank or the data type)")]
    [InlineData(5, "the call was used wrongly (ranks that disagree on the operation, or a destroyed communicator)")]
    [InlineData(6, "a remote rank failed or its network connection broke")]
    [InlineData(7, "the operation is still in progress on a non-blocking communicator")]
    [InlineData(42, "an unknown result was returned")]
    public void EachResultCode_BecomesASentence(int code, string meaning) =>
        Assert.Equal($"NCCL ncclSend failed: {meaning} (result {code}).", NcclErrors.Describe("ncclSend", code));

    [Fact]
    public void NcclsOwnErrorString_IsAddedToTheSentence() =>
        Assert.Equal("NCCL ncclCommInitRank failed: a remote rank failed or its network connection broke (result 6: remote process exited or there was a network error).",
            NcclErrors.Describe("ncclCommInitRank", 6, "remote process exited or there was a network error"));

    [Theory]
    [InlineData(22703, "2.27.3")]
    [InlineData(21003, "2.10.3")]
    [InlineData(2708, "2.7.8")]
    public void VersionCodes_OldAndNewScheme(int code, string text) => Assert.Equal(text, NcclApi.VersionText(code));
}
