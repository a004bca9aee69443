using System.CommandLine;
using System.Text.Json;
using MediatorDiT.Cli.Commands;
using MediatorDiT.Devices;
using MediatorDiT.Evaluation.Performance;

namespace MediatorDiT.Tests.Cli;

/// <summary>
/// `mdit bench`: option checking and the JSON it writes (the timed cases themselves belong in benchmarks); with
/// --device cuda the options it maps to the device suite and the CPU-only parts it refuses (the device suite's report:
/// Cuda/Performance/DevicePerformanceSuiteTests).
/// </summary>
public class BenchCommandTests
{
    [Fact]
    public void RejectsZeroThreadsInOneSentence()
    {
        var r = CliRunner.Run("bench", "--threads", "0");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("--threads must be at least 1", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
    }

    [Fact]
    public void WritesJsonWithTheMachineDescriptionIntoANewFolder()
    {
        string path = Path.Combine(CliRunner.TempDir(), "new", "bench.json");
        var r = CliRunner.Run("bench", "--memory-only", "--no-xl", "--no-large", "--threads", "1", "--json", path);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("threads 1 of", r.Stdout);
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var root = doc.RootElement;
        Assert.Equal(1, root.GetProperty("threads").GetInt32());
        Assert.Equal(Environment.ProcessorCount, root.GetProperty("processor_count").GetInt32());
        Assert.Contains("Vector512", root.GetProperty("cpu_features").GetString());
        Assert.Equal(0, root.GetProperty("cases").GetArrayLength());
        Assert.Equal(JsonValueKind.Null, root.GetProperty("xl_sampling_peak_bytes").ValueKind);
    }

    private static PerformanceOptions Options(params string[] args)
    {
        var command = BenchCommand.Create();
        var parse = command.Parse(args);
        Assert.Empty(parse.Errors);
        Option<bool> Flag(string name) => command.Options.OfType<Option<bool>>().Single(o => o.Name == name);
        return BenchCommand.Options(parse, command.Options.OfType<Option<int>>().Single(o => o.Name == "--threads"), Flag("--quick"), Flag("--no-large"),
            Flag("--no-xl"), Flag("--breakdown"), Flag("--memory-only"), command.Options.OfType<Option<string>>().Single(o => o.Name == "--device"));
    }

    [Fact]
    public void TheOptionsMapToTheSuite_OnTheDeviceWithoutTheCpuMemoryCheck()
    {
        Assert.Equal(new PerformanceOptions(3, Quick: true, Large: false, XlMemory: false), Options("--device", "cuda:1", "--quick", "--no-large", "--threads", "3"));
        Assert.Equal(new PerformanceOptions(2, XlMemory: false), Options("--device", "cuda", "--no-xl", "--threads", "2"));
        Assert.Equal(new PerformanceOptions(2, Breakdown: true), Options("--breakdown", "--threads", "2"));
        Assert.Equal(new PerformanceOptions(1, XlMemory: false, Timings: false), Options("--memory-only", "--no-xl", "--threads", "1"));
    }

    [Theory]
    [InlineData("--breakdown", "cuda", "error: --breakdown times the CPU kernels' operations; it does not apply to --device cuda.")]
    [InlineData("--memory-only", "cuda:1", "error: --memory-only measures the CPU process's memory; it does not apply to --device cuda:1.")]
    public void OnTheDeviceTheCpuOnlyPartsAreRefusedInOneSentence(string flag, string device, string expected)
    {
        var r = CliRunner.Run("bench", "--device", device, flag);
        Assert.Equal(1, r.ExitCode);
        Assert.Equal(expected, r.Stderr.Trim());
    }

    [Fact]
    public void OnCudaItSaysWhatWasNotFound_AndBf16OnTheCpuIsRefused()
    {
        string json = Path.Combine(CliRunner.TempDir(), "new", "bench.json");
        var r = CliRunner.Run("bench", "--device", "cuda", "--quick", "--json", json);
        Assert.Equal(1, r.ExitCode);
        if (CudaLibraries.Locate().Driver is null)
            Assert.Equal("error: --device cuda: no NVIDIA driver (libcuda.so.1) was found on the loader path, CUDA_HOME or a Python environment's nvidia/*/lib; " +
                "this machine can run on the cpu only.", r.Stderr.Trim());
        else Assert.StartsWith("error: --device cuda: ", r.Stderr.Trim());
        Assert.False(Directory.Exists(Path.GetDirectoryName(json)));
        var bf16 = CliRunner.Run("bench", "--precision", "bf16", "--memory-only");
        Assert.Equal(1, bf16.ExitCode);
        Assert.Equal("error: --precision bf16 runs on a GPU only; the cpu computes in float32.", bf16.Stderr.Trim());
    }

    [Fact]
    public void AComparisonOfTheCores_IsRefusedOnTheCpuAndWithFp32Products_BeforeTheDeviceOpens()
    {
        var cpu = CliRunner.Run("bench", "--quick", "--compare-full-attention");
        Assert.Equal(1, cpu.ExitCode);
        Assert.Equal("error: --compare-full-attention times full attention's cores on a GPU; it does not apply to --device cpu.", cpu.Stderr.Trim());
        // The same sentence with or without a GPU: refused before --device cuda is opened.
        var fp32 = CliRunner.Run("bench", "--device", "cuda", "--precision", "fp32", "--compare-full-attention");
        Assert.Equal(1, fp32.ExitCode);
        Assert.Equal("error: --compare-full-attention times the fused core too, which runs bf16 products only; --precision is fp32.", fp32.Stderr.Trim());
    }
}
