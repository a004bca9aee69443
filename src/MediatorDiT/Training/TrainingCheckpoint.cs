using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using MediatorDiT.IO;

namespace MediatorDiT.Training;

/// <summary>
/// A resumable training state in one safetensors file, written atomically:
/// tensors "model.NAME", "ema.NAME", "opt.exp_avg.NAME", "opt.exp_avg_sq.NAME"; metadata "step",
/// "config" (the resolved TrainConfig), "rng" (the generator's state words), "opt_steps" (per-parameter
/// AdamW step counts). Files are checkpoints/NNNNNNN.safetensors; temp files never match that pattern.
/// </summary>
public static partial class TrainingCheckpoint
{
    public const string Format = "mediatordit-train-checkpoint/1";

    [GeneratedRegex(@"^(\d{7,})\.safetensors$")]
    private static partial Regex FileNamePattern();

    public static string PathFor(string runDir, long step) =>
        System.IO.Path.Combine(runDir, "checkpoints", step.ToString("D7", CultureInfo.InvariantCulture) + ".safetensors");

    public static void Save(string path, TrainableNetwork network, TrainableNetwork ema, AdamW optimizer, long step,
        TrainConfig config, ulong[] rngState)
    {
        var tensors = new Dictionary<string, StoredTensor>();
        foreach (var p in network.Parameters) tensors["model." + network.NameOf(p)] = StoredTensor.FromFloat(p.Value);
        foreach (var p in ema.Parameters) tensors["ema." + ema.NameOf(p)] = StoredTensor.FromFloat(p.Value);
        var steps = new Dictionary<string, long>();
        foreach (var (p, m, v, s) in optimizer.State)
        {
            string name = network.NameOf(p);
            tensors["opt.exp_avg." + name] = StoredTensor.FromFloat(m);
            tensors["opt.exp_avg_sq." + name] = StoredTensor.FromFloat(v);
            steps[name] = s;
        }
        var metadata = new Dictionary<string, string>
        {
            ["format"] = Format,
            ["step"] = step.ToString(CultureInfo.InvariantCulture),
            ["config"] = config.ToJson(),
            ["rng"] = string.Join(",", rngState),
            ["opt_steps"] = JsonSerializer.Serialize(steps),
        };
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        SafeTensors.Write(path, tensors, metadata);
    }

    /// <summary>Restores weights, EMA and optimizer state; returns the step and the generator state.</summary>
    public static (long Step, ulong[] Rng, TrainConfig Config) Load(string path, TrainableNetwork network, TrainableNetwork ema, AdamW optimizer)
    {
        var file = SafeTensors.Read(path);
        if (!file.Metadata.TryGetValue("format", out var format) || format != Format)
            throw new MediatorDiTException($"{path} is not a MediatorDiT training checkpoint (metadata 'format' is '{format ?? "missing"}', expected '{Format}').");
        foreach (var p in network.Parameters) CopyInto(file, "model." + network.NameOf(p), p.Value);
        foreach (var p in ema.Parameters) CopyInto(file, "ema." + ema.NameOf(p), p.Value);
        var steps = JsonSerializer.Deserialize<Dictionary<string, long>>(file.Metadata["opt_steps"]) ?? [];
        foreach (var (p, m, v, _) in optimizer.State)
        {
            string name = network.NameOf(p);
            CopyInto(file, "opt.exp_avg." + name, m);
            CopyInto(file, "opt.exp_avg_sq." + name, v);
            optimizer.RestoreStep(p, steps.GetValueOrDefault(name));
        }
        long step = long.Parse(file.Metadata["step"], CultureInfo.InvariantCulture);
        ulong[] rng = file.Metadata["rng"].Split(',').Select(s => ulong.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        return (step, rng, TrainConfig.FromJson(file.Metadata["config"], path));
    }

    private static void CopyInto(SafeTensorsFile file, string key, Tensors.Tensor destination)
    {
        var stored = file.Get(key);
        if (stored.ElementCount != destination.Length)
            throw new MediatorDiTException($"{file.Path}: tensor '{key}' has shape {stored.ShapeString} but the run expects [{destination.ShapeString}].");
        stored.CopyTo(destination.Span);
    }

    /// <summary>Checkpoint files of a run, oldest first (leftover temp files are ignored).</summary>
    public static IReadOnlyList<(long Step, string Path)> List(string runDir)
    {
        string dir = System.IO.Path.Combine(runDir, "checkpoints");
        if (!Directory.Exists(dir)) return [];
        return Directory.EnumerateFiles(dir)
            .Select(f => (Match: FileNamePattern().Match(System.IO.Path.GetFileName(f)), Path: f))
            .Where(x => x.Match.Success)
            .Select(x => (long.Parse(x.Match.Groups[1].Value, CultureInfo.InvariantCulture), x.Path))
            .OrderBy(x => x.Item1)
            .ToArray();
    }

    public static string? Latest(string runDir) => List(runDir).Select(c => c.Path).LastOrDefault();

    /// <summary>Deletes all but the newest <paramref name="keep"/> checkpoints.</summary>
    public static void Prune(string runDir, int keep)
    {
        var all = List(runDir);
        foreach (var (_, path) in all.Take(Math.Max(0, all.Count - keep))) File.Delete(path);
    }
}
