using System.Text.Json;
using MediatorDiT.IO;
using MediatorDiT.Models;

namespace MediatorDiT.Tests.Cli;

/// <summary>`mdit sample` end to end: replaying the official switching run, and bad input up front.</summary>
public class SampleCommandTests
{
    /// <summary>Writes the fixture's three models (1, 4, 16 mediators) as standalone weight files.</summary>
    internal static string[] WriteLadder(string dir)
    {
        var io = SafeTensors.Read(Fixtures.PathOf("switching_sde_euler.io.safetensors"));
        var paths = new List<string>();
        int[] counts = [1, 4, 16];
        for (int i = 0; i < 3; i++)
        {
            var config = new ModelConfig
            {
                InputSize = 16, PatchSize = 2, InChannels = 4, HiddenSize = 64, Depth = 1, NumHeads = 4, NumClasses = 10,
                MediatorNum = counts[i], Attention = AttentionKind.Mediator,
            };
            var model = new SiTModel(config);
            string prefix = $"model{i + 1}.";
            var state = io.Tensors.Where(kv => kv.Key.StartsWith(prefix)).ToDictionary(kv => kv.Key[prefix.Length..], kv => kv.Value);
            StateDict.LoadInto(model, state, strict: true, "fixture");
            string path = Path.Combine(dir, $"m{counts[i]}.safetensors");
            ModelFiles.Save(model, path);
            paths.Add(path);
        }
        return paths.ToArray();
    }

    [Fact]
    public void ReplayingTheRecordedNoiseReproducesTheOfficialSwitchingRun()
    {
        string dir = CliRunner.TempDir();
        var ladder = WriteLadder(dir);
        string fixture = Fixtures.PathOf("switching_sde_euler.io.safetensors");
        var io = SafeTensors.Read(fixture);
        string labels = string.Join(",", io.GetInt64("y"));
        string latents = Path.Combine(dir, "final.safetensors");
        var r = CliRunner.Run("sample", "--ladder", string.Join(",", ladder), "--ratios", "0.9,0.6", "--first", "3",
            "--mode", "sde", "--method", "euler", "--diffusion-form", "sigma", "--last-step", "mean", "--last-step-size", "0.04",
            "--steps", "20", "--labels", labels, "--initial-noise", fixture, "--noise-file", fixture,
            "--save-latents", latents, "--out", Path.Combine(dir, "out"), "--no-progress");
        Assert.True(r.ExitCode == 0, r.Stderr);
        TestData.AssertClose(io.GetFloat("final").Span, SafeTensors.Read(latents).GetFloat("samples").Span, 1e-4f, "final");
        using var record = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "out", "run.json")));
        var switches = record.RootElement.GetProperty("samples")[0].GetProperty("first_step_of_model").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        Assert.Equal([0, 7, 16], switches);
        Assert.Contains("less than the largest model alone", r.Stdout);
    }

    /// <summary>
    /// The recorded run again, its ratios and reference steps now taken from schedule.json beside the ladder (as
    /// `mdit demo` and the library's pipeline read it): the same switch steps; options override the file.
    /// </summary>
    [Fact]
    public void ALadderSamplesWithTheScheduleJsonBesideIt()
    {
        string dir = CliRunner.TempDir();
        var ladder = WriteLadder(dir);
        File.WriteAllText(Path.Combine(dir, "schedule.json"), """{"ratios": [0.9, 0.6], "first": 3, "note": "as best.json writes it"}""");
        string fixture = Fixtures.PathOf("switching_sde_euler.io.safetensors");
        string labels = string.Join(",", SafeTensors.Read(fixture).GetInt64("y"));
        string[] common = ["sample", "--ladder", string.Join(",", ladder), "--steps", "20", "--labels", labels, "--initial-noise", fixture,
            "--noise-file", fixture, "--save-latents", Path.Combine(dir, "l.safetensors"), "--no-progress"];
        int[] Switches(string outDir, out string schedule)
        {
            using var record = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "run.json")));
            schedule = record.RootElement.GetProperty("schedule").GetString()!;
            return record.RootElement.GetProperty("samples")[0].GetProperty("first_step_of_model").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        }
        var r = CliRunner.Run([.. common, "--out", Path.Combine(dir, "file")]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal([0, 7, 16], Switches(Path.Combine(dir, "file"), out string fromFile));
        Assert.Equal($"dynamic, ratios 0.9,0.6, first 3 ({Path.Combine(dir, "schedule.json")})", fromFile);
        Assert.Contains("schedule: dynamic, ratios 0.9,0.6, first 3", r.Stderr);

        var o = CliRunner.Run([.. common, "--ratios", "0,0", "--out", Path.Combine(dir, "options")]);
        Assert.True(o.ExitCode == 0, o.Stderr);
        Assert.Equal([0, -1, -1], Switches(Path.Combine(dir, "options"), out string fromOptions));
        Assert.Equal($"dynamic, ratios 0,0, first 3 (options over {Path.Combine(dir, "schedule.json")})", fromOptions);
    }

    [Theory]
    [InlineData("--cfg-scale", "0.5", "--cfg-scale")]
    [InlineData("--labels", "3,12", "12")]
    [InlineData("--ratios", "0.5,0.9", "0.9")]
    [InlineData("--ratios", "1.5,0.5", "1.5")]
    public void BadOptionsFailBeforeAnyWork(string option, string value, string named)
    {
        string dir = CliRunner.TempDir();
        var ladder = WriteLadder(dir);
        var r = CliRunner.Run("sample", "--ladder", string.Join(",", ladder), option, value, "--save-latents", Path.Combine(dir, "l.safetensors"),
            "--out", Path.Combine(dir, "out"), "--steps", "4");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains(named, r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
        Assert.False(File.Exists(Path.Combine(dir, "l.safetensors")));
    }

    [Fact]
    public void GuidingTheShippedLadderGuidesAllItsChannelsByDefault()
    {
        string? m64 = ShippedModels.TryFind(Path.Combine("fashion-mnist-ladder", "m64.safetensors"), out _);
        if (m64 is null) return; // a checkout without the ladder
        string folder = Path.GetDirectoryName(m64)!;
        string ladder = string.Join(",", new[] { "m4", "m16", "m64" }.Select(m => Path.Combine(folder, m + ".safetensors")));
        string dir = CliRunner.TempDir();
        var r = CliRunner.Run("sample", "--ladder", ladder, "--labels", "0,1,2", "--cfg-scale", "2", "--steps", "4", "--out", dir, "--no-progress");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using (var record = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "run.json"))))
            Assert.Equal("all", record.RootElement.GetProperty("cfg_channels").GetString());

        // Asking explicitly for the official first 3 channels of a 1-channel model names the option to use.
        var bad = CliRunner.Run("sample", "--ladder", ladder, "--labels", "0,1,2", "--cfg-scale", "2", "--cfg-all-channels", "false", "--steps", "4",
            "--out", CliRunner.TempDir(), "--no-progress");
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("error: --cfg-all-channels false asks for guidance on the first 3 channels but the model has only 1; use --cfg-all-channels (or leave it out) to guide all of them.",
            bad.Stderr);
        Assert.DoesNotContain("   at ", bad.Stderr);
    }

    [Theory]
    [InlineData(new string[0], 3)]
    [InlineData(new[] { "--cfg-all-channels" }, 0)]
    [InlineData(new[] { "--cfg-all-channels=false" }, 3)]
    public void A4ChannelLadderKeepsTheOfficialFirst3ChannelsUnlessToldOtherwise(string[] channelOption, int expected)
    {
        string dir = CliRunner.TempDir();
        var ladder = WriteLadder(dir);
        var r = CliRunner.Run(["sample", "--ladder", string.Join(",", ladder), "--labels", "1,2", "--cfg-scale", "2", .. channelOption, "--steps", "4",
            "--save-latents", Path.Combine(dir, "l.safetensors"), "--out", Path.Combine(dir, "out"), "--no-progress"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var record = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "out", "run.json")));
        var channels = record.RootElement.GetProperty("cfg_channels");
        if (expected == 0) Assert.Equal("all", channels.GetString());
        else Assert.Equal(expected, channels.GetInt32());
    }

    [Fact]
    public void LadderOfDifferentSizesAndUnwritableFolderAreRejected()
    {
        string dir = CliRunner.TempDir();
        var ladder = WriteLadder(dir);
        string other = Path.Combine(dir, "other.safetensors");
        ModelFiles.Save(new SiTModel(new ModelConfig { InputSize = 8, PatchSize = 2, InChannels = 4, HiddenSize = 64, Depth = 1, NumHeads = 4, NumClasses = 10, MediatorNum = 64 }), other);
        var r = CliRunner.Run("sample", "--ladder", $"{ladder[0]},{other}", "--save-latents", Path.Combine(dir, "l.safetensors"), "--out", Path.Combine(dir, "o"));
        Assert.Equal(1, r.ExitCode);
        Assert.DoesNotContain("   at ", r.Stderr);

        string blocker = Path.Combine(dir, "file");
        File.WriteAllText(blocker, "x");
        var w = CliRunner.Run("sample", "--checkpoint", ladder[0], "--out", Path.Combine(blocker, "sub"), "--save-latents", Path.Combine(dir, "l.safetensors"));
        Assert.Equal(1, w.ExitCode);
        Assert.Contains("not writable", w.Stderr);
    }
}
