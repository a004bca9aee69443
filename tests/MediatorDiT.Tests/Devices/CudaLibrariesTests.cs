using MediatorDiT.Devices;
using MediatorDiT.Pipelines;
using MediatorDiT.Tensors;
using MediatorDiT.Tests.Cli;

namespace MediatorDiT.Tests.Devices;

/// <summary>The run-time search for the CUDA libraries, on folder trees of empty files named like the real ones.</summary>
public class CudaLibrariesTests : IDisposable
{
    private readonly string _root = CliRunner.TempDir();

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private string Folder(string relative, params string[] files)
    {
        string folder = Path.Combine(_root, relative);
        Directory.CreateDirectory(folder);
        foreach (var f in files) File.WriteAllBytes(Path.Combine(folder, f), []);
        return folder;
    }

    /// <summary>An environment with only the given variables, no system folders, no default CUDA_HOME.</summary>
    private static CudaSearchEnvironment Isolated(Dictionary<string, string> variables, params string[] sitePackages) => new()
    {
        Variable = name => variables.GetValueOrDefault(name),
        PythonSitePackages = () => sitePackages,
    };

    [Fact]
    public void TheOverrideFolderIsSearchedFirst_AndTheNewestCublasWins()
    {
        string over = Folder("override", "libcuda.so.1", "libcublas.so.12", "libcublasLt.so.12", "libcublas.so.13", "libcublasLt.so.13");
        string loader = Folder("loader", "libcuda.so.1", "libcublas.so.13", "libcublasLt.so.13");
        var report = CudaLibraries.Locate(Isolated(new() { ["MDIT_CUDA_LIB_DIR"] = over, ["LD_LIBRARY_PATH"] = loader }));
        Assert.True(report.Complete);
        Assert.Null(report.Missing);
        Assert.Equal(Path.Combine(over, "libcuda.so.1"), report.Driver);
        Assert.Equal(Path.Combine(over, "libcublas.so.13"), report.Cublas);
        Assert.Equal(Path.Combine(over, "libcublasLt.so.13"), report.CublasLt);
        Assert.Equal(13, report.CublasVersion);
        Assert.Equal([new CudaSearchFolder(over, "MDIT_CUDA_LIB_DIR")], report.Searched); // found everything there: stops
    }

    [Fact]
    public void EachLibraryComesFromTheFirstFolderInOrder_LoaderPathThenCudaHomeThenPython()
    {
        string loader = Folder("ld", "libcuda.so.1");
        string home = Folder("cuda");
        Folder("cuda/lib64", "libcublas.so.12");
        string site = Folder("venv/lib/python3.12/site-packages");
        string wheel = Folder("venv/lib/python3.12/site-packages/nvidia/cublas/lib", "libcublas.so.12", "libcublasLt.so.12");
        bool askedPython = false;
        var environment = Isolated(new() { ["LD_LIBRARY_PATH"] = "/no/such/folder:" + loader, ["CUDA_HOME"] = home }) with
        {
            PythonSitePackages = () => { askedPython = true; return [site]; },
        };
        var report = CudaLibraries.Locate(environment);
        Assert.True(askedPython);
        Assert.Equal(Path.Combine(loader, "libcuda.so.1"), report.Driver);
        Assert.Equal(Path.Combine(home, "lib64", "libcublas.so.12"), report.Cublas);
        Assert.Equal(Path.Combine(wheel, "libcublasLt.so.12"), report.CublasLt);
        Assert.Equal(["LD_LIBRARY_PATH", "CUDA_HOME", $"Python ({site})"], report.Searched.Select(f => f.Source).ToArray());
    }

    [Fact]
    public void PythonIsNotAskedWhenTheEarlierPlacesHaveEverything()
    {
        string loader = Folder("ld", "libcuda.so.1", "libcublas.so.13", "libcublasLt.so.13");
        var report = CudaLibraries.Locate(Isolated(new() { ["LD_LIBRARY_PATH"] = loader }) with
        {
            PythonSitePackages = () => throw new InvalidOperationException("python asked"),
        });
        Assert.True(report.Complete);
    }

    [Fact]
    public void CublasLtMustMatchCublasMajorVersion()
    {
        string loader = Folder("ld", "libcuda.so.1", "libcublas.so.12", "libcublasLt.so.13");
        var report = CudaLibraries.Locate(Isolated(new() { ["LD_LIBRARY_PATH"] = loader }));
        Assert.Equal(Path.Combine(loader, "libcublas.so.12"), report.Cublas);
        Assert.Null(report.CublasLt);
        Assert.Equal("cuBLAS was found (" + Path.Combine(loader, "libcublas.so.12") + ") but not its libcublasLt.so.12 on the loader path, CUDA_HOME " +
            "or a Python environment's nvidia/*/lib; set MDIT_CUDA_LIB_DIR to the folder that holds both", report.Missing);
    }

    [Fact]
    public void AMissingDriverIsReportedInOneSentence()
    {
        string over = Folder("override", "libcublas.so.13", "libcublasLt.so.13");
        var report = CudaLibraries.Locate(Isolated(new() { ["MDIT_CUDA_LIB_DIR"] = over }));
        Assert.Null(report.Driver);
        Assert.False(report.Complete);
        Assert.Equal("no NVIDIA driver (libcuda.so.1) was found in MDIT_CUDA_LIB_DIR, on the loader path, CUDA_HOME or a Python environment's nvidia/*/lib",
            report.Missing);
        Assert.Equal("no NVIDIA driver (libcuda.so.1) was found in MDIT_CUDA_LIB_DIR, on the loader path, CUDA_HOME or a Python environment's nvidia/*/lib; " +
            "this machine can run on the cpu only", DeviceAvailability.Problem(new DeviceSelection(ComputeDevice.Cuda, 0), Isolated(new() { ["MDIT_CUDA_LIB_DIR"] = over })));
    }

    [Fact]
    public void AMissingCublasIsReportedWithTheDriverFound()
    {
        string loader = Folder("ld", "libcuda.so.1");
        var report = CudaLibraries.Locate(Isolated(new() { ["LD_LIBRARY_PATH"] = loader }));
        Assert.Equal($"the NVIDIA driver was found ({Path.Combine(loader, "libcuda.so.1")}) but no cuBLAS (libcublas.so.13 or libcublas.so.12) on the loader path, " +
            "CUDA_HOME or a Python environment's nvidia/*/lib; install the CUDA toolkit or the nvidia-cublas pip wheel, or set MDIT_CUDA_LIB_DIR to its folder",
            report.Missing);
    }

    [Fact]
    public void AFileThatIsNotADriverIsReportedAsSuch()
    {
        // An empty file named libcuda.so.1 does not load: the check says so instead of failing later.
        string over = Folder("override", "libcuda.so.1", "libcublas.so.13", "libcublasLt.so.13");
        string? problem = DeviceAvailability.Problem(new DeviceSelection(ComputeDevice.Cuda, 0), Isolated(new() { ["MDIT_CUDA_LIB_DIR"] = over }));
        Assert.Equal($"the NVIDIA driver {Path.Combine(over, "libcuda.so.1")} could not be loaded; this machine can run on the cpu only", problem);
    }

    [Fact]
    public void TheCpuIsAlwaysAvailable() =>
        Assert.Null(DeviceAvailability.Problem(DeviceSelection.Cpu, Isolated(new())));

    [Fact]
    public void APipelineOnAnUnavailableCudaDeviceIsRefusedBeforeAnyWork()
    {
        if (CudaLibraries.Locate().Driver is not null) return; // a GPU machine: the sentence differs (GpuDeviceTests)
        var compute = ComputeContext.WithThreads(1) with { Device = ComputeDevice.Cuda };
        var e = Assert.Throws<MediatorDiTException>(() => DiffusionPipeline.LoadLadder(["/no/such/weights.safetensors"], new PipelineLoadOptions { Compute = compute }));
        Assert.StartsWith("device cuda:0: no NVIDIA driver (libcuda.so.1) was found", e.Message);
        Assert.EndsWith("; this machine can run on the cpu only.", e.Message);
    }
}
