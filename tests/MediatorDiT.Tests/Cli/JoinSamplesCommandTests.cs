using System.Diagnostics;
using System.Text.Json;
using MediatorDiT.IO;
using MediatorDiT.Models;

namespace MediatorDiT.Tests.Cli;

/// <summary>
/// `mpiexec -n 2 mdit sample --npz` takes each rank from the launcher and writes samples-rank&lt;r&gt;.npz and
/// run-rank&lt;r&gt;.json into one folder; `mdit join-samples` joins them into the single process's samples.npz.
/// </summary>
public class JoinSamplesCommandTests
{
    private static string TinyModel(string dir)
    {
        var model = new SiTModel(new ModelConfig
        {
            InputSize = 16, PatchSize = 4, InChannels = 1, HiddenSize = 32, Depth = 1, NumHeads = 2, NumClasses = 3,
            MediatorNum = 4, Attention = AttentionKind.Mediator, LearnSigma = false,
        });
        var rng = new MediatorDiT.Tensors.RandomSource(3);
        foreach (var p in model.Parameters) rng.FillGaussian(p.Value.Span, 0, 0.05f);
        string path = Path.Combine(dir, "tiny.safetensors");
        ModelFiles.Save(model, path);
        return path;
    }

    private static string[] SampleArgs(string model, string output) =>
        ["sample", "--checkpoint", model, "--num-images", "5", "--batch-size", "1", "--steps", "4", "--npz", "--out", output, "--threads", "1", "--no-progress"];

    [Fact]
    public async Task TwoRanksJoinedEqualOneProcess()
    {
        if (!OperatingSystem.IsLinux()) return;
        string dir = CliRunner.TempDir();
        string model = TinyModel(dir);
        string one = Path.Combine(dir, "one"), two = Path.Combine(dir, "two");
        var single = CliRunner.Run(SampleArgs(model, one));
        Assert.True(single.ExitCode == 0, single.Stderr);

        var psi = new ProcessStartInfo("mpiexec") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-n", "2", "dotnet", Path.Combine(AppContext.BaseDirectory, "mdit.dll") }.Concat(SampleArgs(model, two))) psi.ArgumentList.Add(a);
        using (var p = Process.Start(psi)!)
        {
            var stderr = p.StandardError.ReadToEndAsync();
            _ = p.StandardOutput.ReadToEndAsync();
            Assert.True(p.WaitForExit(120_000), "mpiexec sample did not end in 120 s");
            Assert.True(p.ExitCode == 0, await stderr);
        }
        Assert.True(File.Exists(Path.Combine(two, "samples-rank0.npz")) && File.Exists(Path.Combine(two, "samples-rank1.npz")));
        Assert.True(File.Exists(Path.Combine(two, "run-rank1.json")));
        Assert.Equal(Enumerable.Range(0, 5).Select(i => $"{i:D6}.png"), Directory.GetFiles(two, "0*.png").Select(Path.GetFileName).Order());

        var join = CliRunner.Run("join-samples", two);
        Assert.True(join.ExitCode == 0, join.Stderr);
        Assert.Equal($"5 images of 2 ranks with their labels (arr_1) -> {Path.Combine(two, "samples.npz")}", join.Stdout.Trim());
        using var expected = new NpzReader(Path.Combine(one, "samples.npz"));
        using var joined = new NpzReader(Path.Combine(two, "samples.npz"));
        Assert.Equal(expected.Read("arr_0").Bytes.ToArray(), joined.Read("arr_0").Bytes.ToArray());
        using var record = JsonDocument.Parse(File.ReadAllText(Path.Combine(one, "run.json")));
        var labels = record.RootElement.GetProperty("samples").EnumerateArray().Select(s => (long)s.GetProperty("label").GetInt32()).ToArray();
        Assert.Equal(labels, joined.Read("arr_1").ToInt64());
    }

    [Fact]
    public void AMissingRankIsNamed()
    {
        string dir = CliRunner.TempDir();
        File.WriteAllBytes(Path.Combine(dir, "samples-rank1.npz"), []);
        var r = CliRunner.Run("join-samples", dir);
        Assert.Equal(1, r.ExitCode);
        Assert.Equal($"error: {dir} has samples of 2 ranks but no samples-rank0.npz; rerun the missing ranks first.", r.Stderr.Trim());
    }
}
