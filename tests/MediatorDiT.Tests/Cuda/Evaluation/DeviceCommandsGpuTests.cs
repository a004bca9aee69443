using System.Globalization;
using System.Text.Json;
using MediatorDiT.Tests.Cli;
using MediatorDiT.Tests.Devices;

namespace MediatorDiT.Tests.Cuda.Evaluation;

/// <summary>
/// On a machine with an NVIDIA GPU: `mdit redundancy` and `mdit search-thresholds` with --device cuda --precision fp32
/// give the cpu's results (DeviceRedundancyTests' and DeviceSearchAndServeTests' bounds; cuBLAS sums in its own order),
/// and `mdit bench --device cuda --quick` writes a well-formed report naming the card.
/// </summary>
[Trait("Category", "Gpu")]
public class DeviceCommandsGpuTests
{
    [GpuFact]
    public void RedundancyOnCuda_GivesTheCpuValues()
    {
        string dir = CliRunner.TempDir();
        string[] Run(string device)
        {
            string outDir = Path.Combine(dir, device);
            var r = CliRunner.Run("redundancy", "--checkpoint", Fixtures.PathOf("mediator_grid4_m4.weights.safetensors"), "--samples", "3", "--batch-size", "2",
                "--steps", "6", "--cfg-scale", "2", "--out", outDir, "--no-progress", "--device", device, "--precision", "fp32");
            Assert.True(r.ExitCode == 0, r.Stderr);
            return File.ReadAllLines(Path.Combine(outDir, "redundancy.csv"));
        }
        var cpu = Run("cpu");
        var cuda = Run("cuda");
        Assert.Equal(cpu.Length, cuda.Length);
        for (int i = 1; i < cpu.Length; i++)
        {
            var (e, a) = (cpu[i].Split(','), cuda[i].Split(','));
            Assert.Equal(e[..3], a[..3]);
            double se = double.Parse(e[3], CultureInfo.InvariantCulture), sa = double.Parse(a[3], CultureInfo.InvariantCulture);
            Assert.True(Math.Abs(se - sa) <= 1e-3 * Math.Max(se, 1e-3), $"{cpu[i]} vs {cuda[i]}");
        }
    }

    [GpuFact]
    public void SearchThresholdsOnCuda_ChoosesTheCpusSchedule()
    {
        string dir = CliRunner.TempDir();
        var ladder = string.Join(",", SampleCommandTests.WriteLadder(dir));
        JsonElement Run(string device)
        {
            string outDir = Path.Combine(dir, device);
            var r = CliRunner.Run("search-thresholds", "--ladder", ladder, "--samples", "2", "--steps", "12", "--first", "2", "--no-progress", "--out", outDir,
                "--device", device, "--precision", "fp32");
            Assert.True(r.ExitCode == 0, r.Stderr);
            return JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "best.json"))).RootElement.Clone();
        }
        var cpu = Run("cpu");
        var cuda = Run("cuda");
        Assert.Equal(cpu.GetProperty("ratios").ToString(), cuda.GetProperty("ratios").ToString());
        Assert.Equal(cpu.GetProperty("gflops_per_image").GetDouble(), cuda.GetProperty("gflops_per_image").GetDouble());
        Assert.Equal(cpu.GetProperty("network_calls").GetInt64(), cuda.GetProperty("network_calls").GetInt64());
    }

    [GpuFact]
    public void BenchOnCuda_WritesAReportNamingTheCard()
    {
        string json = Path.Combine(CliRunner.TempDir(), "bench.json");
        var r = CliRunner.Run("bench", "--device", "cuda", "--quick", "--no-large", "--json", json);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.StartsWith("device cuda:0 (", r.Stdout);
        var root = JsonDocument.Parse(File.ReadAllText(json)).RootElement;
        Assert.StartsWith("cuda:0 (", root.GetProperty("device").GetString());
        Assert.Equal("bf16", root.GetProperty("precision").GetString());
        Assert.Equal("cuBLAS", root.GetProperty("gemm_backend").GetString());
        Assert.Equal(4, root.GetProperty("cases").GetArrayLength());
        foreach (var c in root.GetProperty("cases").EnumerateArray())
            Assert.True(c.GetProperty("images_per_second").GetDouble() > 0 && c.GetProperty("gflops").GetDouble() > 0, c.ToString());
    }
}
