using MediatorDiT.Cli.Commands;
using MediatorDiT.Cuda.Models;
using MediatorDiT.Devices;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Cli;

/// <summary>
/// --device on the real mdit: a malformed value is a parse error; a CUDA device this machine lacks is one sentence, exit 1,
/// for every command that runs on the device (sample, demo, forward, train, search-thresholds, serve, redundancy, bench);
/// the sampling commands' factory choice;
/// --precision: a malformed value is a parse error, bf16 on the cpu one sentence before any work;
/// --full-attention: a malformed value is a parse error, fused on the cpu or with fp32 products one sentence before any
/// work (before the device is opened), tiles accepted everywhere.
/// </summary>
public class DeviceOptionsTests
{
    private const string NoDriver = "no NVIDIA driver (libcuda.so.1) was found on the loader path, CUDA_HOME or a Python environment's nvidia/*/lib; " +
        "this machine can run on the cpu only.";

    private static void AssertRefused(CliRunner.Result r, string expected)
    {
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("", r.Stdout);
        Assert.Equal(expected, r.Stderr.Trim());
    }

    [Fact]
    public void ForwardOnCuda_SaysWhatWasNotFound()
    {
        var r = CliRunner.Run("forward", "--weights", "w.safetensors", "--inputs", "in.safetensors", "--out", Path.Combine(CliRunner.TempDir(), "o.safetensors"),
            "--device", "cuda");
        if (CudaLibraries.Locate().Driver is null) AssertRefused(r, "error: --device cuda: " + NoDriver);
        else Assert.StartsWith("error: --device cuda: ", r.Stderr.Trim());
    }

    [Fact]
    public void TrainOnCudaN_SaysWhatWasNotFound_BeforeTouchingTheRunFolder()
    {
        string dir = Path.Combine(CliRunner.TempDir(), "run");
        var r = CliRunner.Run("train", "--dataset", "fashion-mnist", "--steps", "1", "--out", dir, "--device", "cuda:1");
        if (CudaLibraries.Locate().Driver is null) AssertRefused(r, "error: --device cuda:1: " + NoDriver);
        else Assert.StartsWith("error: --device cuda:1: ", r.Stderr.Trim());
        Assert.False(Directory.Exists(dir));
    }

    [Fact]
    public void TheOverrideFolderIsNamedWhenItLacksTheDriver()
    {
        string empty = CliRunner.TempDir();
        var r = CliRunner.RunWithEnvironment(new Dictionary<string, string> { ["MDIT_CUDA_LIB_DIR"] = empty },
            "sample", "--checkpoint", "w.safetensors", "--out", Path.Combine(empty, "out"), "--device", "cuda");
        if (CudaLibraries.Locate().Driver is not null) return;
        AssertRefused(r, "error: --device cuda: no NVIDIA driver (libcuda.so.1) was found in MDIT_CUDA_LIB_DIR, on the loader path, CUDA_HOME or a " +
            "Python environment's nvidia/*/lib; this machine can run on the cpu only.");
        Assert.False(Directory.Exists(Path.Combine(empty, "out")));
    }

    [Fact]
    public void DemoOnCuda_SaysWhatWasNotFound_BeforeTouchingTheOutputFolder()
    {
        string dir = Path.Combine(CliRunner.TempDir(), "demo");
        var r = CliRunner.Run("demo", "--per-class", "1", "--steps", "4", "--out", dir, "--no-progress", "--device", "cuda:0");
        if (CudaLibraries.Locate().Driver is null) AssertRefused(r, "error: --device cuda:0: " + NoDriver);
        else Assert.StartsWith("error: --device cuda:0: ", r.Stderr.Trim());
        Assert.False(Directory.Exists(dir));
    }

    [Fact]
    public void RedundancyOnCuda_SaysWhatWasNotFound()
    {
        var r = CliRunner.Run("redundancy", "--checkpoint", "w.safetensors", "--out", Path.Combine(CliRunner.TempDir(), "o"), "--device", "cuda");
        if (CudaLibraries.Locate().Driver is null) AssertRefused(r, "error: --device cuda: " + NoDriver);
        else Assert.StartsWith("error: --device cuda: ", r.Stderr.Trim());
    }

    [Fact]
    public void SearchThresholdsAndServeOnCuda_SayWhatWasNotFound_BeforeAnyWork()
    {
        string dir = Path.Combine(CliRunner.TempDir(), "thresholds");
        var search = CliRunner.Run("search-thresholds", "--ladder", "a.safetensors,b.safetensors", "--out", dir, "--no-progress", "--device", "cuda",
            "--precision", "fp32");
        var serve = CliRunner.Run("serve", "--checkpoint", "w.safetensors", "--port", "0", "--device", "cuda:0", "--precision", "bf16");
        if (CudaLibraries.Locate().Driver is null)
        {
            AssertRefused(search, "error: --device cuda: " + NoDriver);
            AssertRefused(serve, "error: --device cuda:0: " + NoDriver);
        }
        else
        {
            Assert.StartsWith("error: --device cuda: ", search.Stderr.Trim());
            Assert.StartsWith("error: --device cuda:0: ", serve.Stderr.Trim());
        }
        Assert.False(Directory.Exists(dir));
    }

    [Fact]
    public void TheCpuTakesNoDeviceModelFactory() =>
        Assert.Null(DeviceOptions.OpenModels(new DeviceSettings(DeviceSelection.Cpu, "--device cpu", DevicePrecision.Fp32, FullAttentionCore.Tiles)));

    [Fact]
    public void ACudaDeviceOpensTheCudaFactory_OrSaysWhatWasNotFound()
    {
        if (CudaLibraries.Locate().Driver is not null) return; // a GPU machine opens the device (DevicePipelineGpuTests)
        var e = Assert.Throws<MediatorDiTException>(() => DeviceOptions.OpenModels(new DeviceSettings(new DeviceSelection(ComputeDevice.Cuda, 2), "--device cuda:2", DevicePrecision.Bf16, FullAttentionCore.Tiles)));
        Assert.Equal("--device cuda:2: " + NoDriver, e.Message);
    }

    [Fact]
    public void AMalformedDeviceIsAParseError()
    {
        var r = CliRunner.Run("bench", "--device", "gpu");
        AssertRefused(r, "error: --device must be cpu, cuda or cuda:N (N = 0, 1, ...), got 'gpu' (see 'mdit bench --help').");
    }

    private const string Bf16OnCpu = "error: --precision bf16 runs on a GPU only; the cpu computes in float32.";

    [Fact]
    public void Bf16OnTheCpuIsRefused_BeforeAnyWork()
    {
        // forward: before the weights are read (the file does not exist); demo and train: before their folders are made.
        AssertRefused(CliRunner.Run("forward", "--weights", "missing.safetensors", "--inputs", "in.safetensors", "--out",
            Path.Combine(CliRunner.TempDir(), "o.safetensors"), "--precision", "bf16"), Bf16OnCpu);
        string demo = Path.Combine(CliRunner.TempDir(), "demo");
        AssertRefused(CliRunner.Run("demo", "--per-class", "1", "--steps", "4", "--out", demo, "--no-progress", "--device", "cpu", "--precision", "BF16"),
            Bf16OnCpu);
        Assert.False(Directory.Exists(demo));
        string run = Path.Combine(CliRunner.TempDir(), "run");
        AssertRefused(CliRunner.Run("train", "--dataset", "fashion-mnist", "--steps", "1", "--out", run, "--precision", "bf16"), Bf16OnCpu);
        Assert.False(Directory.Exists(run));
        string thresholds = Path.Combine(CliRunner.TempDir(), "thresholds");
        AssertRefused(CliRunner.Run("search-thresholds", "--ladder", "a.safetensors,b.safetensors", "--out", thresholds, "--precision", "bf16"), Bf16OnCpu);
        Assert.False(Directory.Exists(thresholds));
        AssertRefused(CliRunner.Run("serve", "--checkpoint", "missing.safetensors", "--port", "0", "--precision", "bf16"), Bf16OnCpu);
        string redundancy = Path.Combine(CliRunner.TempDir(), "redundancy");
        AssertRefused(CliRunner.Run("redundancy", "--checkpoint", "missing.safetensors", "--out", redundancy, "--precision", "bf16"), Bf16OnCpu);
        Assert.False(Directory.Exists(redundancy));
    }

    [Fact]
    public void AMalformedPrecisionIsAParseError()
    {
        var r = CliRunner.Run("sample", "--checkpoint", "w.safetensors", "--precision", "fp16");
        AssertRefused(r, "error: --precision must be fp32 or bf16, got 'fp16' (see 'mdit sample --help').");
    }

    [Theory]
    [InlineData("--precision", "fp32")]
    [InlineData("--full-attention", "tiles")]
    public void TheCpusOwnSettingsAreAccepted(string option, string value)
    {
        var r = CliRunner.Run("forward", "--weights", "missing.safetensors", "--inputs", "in.safetensors", "--out",
            Path.Combine(CliRunner.TempDir(), "o.safetensors"), option, value);
        Assert.Equal(1, r.ExitCode);
        Assert.DoesNotContain(option, r.Stderr); // it went on to the weights, which do not exist
        Assert.Contains("missing.safetensors", r.Stderr);
    }

    [Fact]
    public void AMalformedFullAttentionCoreIsAParseError()
    {
        var r = CliRunner.Run("train", "--dataset", "fashion-mnist", "--full-attention", "flash");
        AssertRefused(r, "error: --full-attention must be tiles or fused, got 'flash' (see 'mdit train --help').");
    }

    [Fact]
    public void TheFusedCoreOnTheCpuOrWithFp32Products_IsRefusedBeforeAnyWork()
    {
        const string onCpu = "error: --full-attention fused runs on a GPU only; the cpu computes full attention in its own kernels.";
        string demo = Path.Combine(CliRunner.TempDir(), "demo");
        AssertRefused(CliRunner.Run("demo", "--per-class", "1", "--steps", "4", "--out", demo, "--no-progress", "--full-attention", "fused"), onCpu);
        Assert.False(Directory.Exists(demo));
        AssertRefused(CliRunner.Run("bench", "--quick", "--full-attention", "Fused"), onCpu);
        // On cuda with fp32 products: refused before the device is opened, so the same sentence with or without a GPU.
        string run = Path.Combine(CliRunner.TempDir(), "run");
        AssertRefused(CliRunner.Run("train", "--dataset", "fashion-mnist", "--steps", "1", "--out", run, "--device", "cuda", "--precision", "fp32",
            "--full-attention", "fused"), "error: --full-attention fused runs bf16 products only; --precision is fp32.");
        Assert.False(Directory.Exists(run));
        AssertRefused(CliRunner.Run("forward", "--weights", "missing.safetensors", "--inputs", "in.safetensors", "--out",
            Path.Combine(CliRunner.TempDir(), "o.safetensors"), "--device", "cuda:0", "--precision", "fp32", "--full-attention", "fused"),
            "error: --full-attention fused runs bf16 products only; --precision is fp32.");
    }

    [Fact]
    public void EveryDeviceCommandTakesTheThreeOptions()
    {
        foreach (string command in new[] { "sample", "demo", "forward", "train", "redundancy", "search-thresholds", "serve", "bench" })
        {
            var r = CliRunner.Run(command, "--help");
            Assert.Equal(0, r.ExitCode);
            foreach (string option in new[] { "--device", "--precision", "--full-attention" })
                Assert.Contains(option, r.Stdout);
        }
    }
}
