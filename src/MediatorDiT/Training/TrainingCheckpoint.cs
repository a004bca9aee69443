using System.Globalization;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.RegularExpressions;
using MediatorDiT.IO;

namespace MediatorDiT.Training;

/// <summary>
/// A resumable training state in one safetensors file, written atomically:
/// tensors "model.NAME", "ema.NAME", "opt.exp_avg.NAME", "opt.exp_avg_sq.NAME"; metadata "step",
/// "config" (the resolved TrainConfig), "rng" (the generator's state words), "opt_steps" (per-parameter
/// AdamW step counts), "data_crc32" (CRC-32 of the tensor bytes, tensors taken in ordinal name order).
/// Files are checkpoints/NNNNNNN.safetensors; temp files never match that pattern. A state holding a
/// non-finite value is never written, and loading verifies the checksum (files written before it existed
/// have none and load unchecked) and that every value is finite.
/// </summary>
internal static partial class TrainingCheckpoint
{
    public const string Format = "mediatordit-train-checkpoint/1";
    public const string ChecksumKey = "data_crc32";

    [GeneratedRegex(@"^(\d{7,})\.safetensors$")]
    private static partial Regex FileNamePattern();

    public static string PathFor(string runDir, long step) =>
        System.IO.Path.Combine(runDir, "checkpoints", step.ToString("D7", CultureInfo.InvariantCulture) + ".safetensors");

    /// <summary>The checkpoint key of the first weight, EMA weight or optimizer moment holding a NaN or infinity; null when all are finite.</summary>
    public static string? FindNonFinite(TrainableNetwork network, TrainableNetwork ema, AdamW optimizer)
    {
        foreach (var p in network.Parameters)
            if (!TensorPrimitives.IsFiniteAll<float>(p.Value.Span)) return "model." + network.NameOf(p);
        foreach (var p in ema.Parameters)
            if (!TensorPrimitives.IsFiniteAll<float>(p.Value.Span)) return "ema." + ema.NameOf(p);
        foreach (var (p, m, v, _) in optimizer.State)
        {
            if (!TensorPrimitives.IsFiniteAll<float>(m.Span)) return "opt.exp_avg." + network.NameOf(p);
            if (!TensorPrimitives.IsFiniteAll<float>(v.Span)) return "opt.exp_avg_sq." + network.NameOf(p);
        }
        return null;
    }

    public static void Save(string path, TrainableNetwork network, TrainableNetwork ema, AdamW optimizer, long step,
        TrainConfig config, ulong[] rngState)
    {
        // A non-finite state would resume straight into the same failure; the trainer stops before this.
        if (FindNonFinite(network, ema, optimizer) is { } bad)
            throw new MediatorDiTException($"{path}: not written, tensor '{bad}' holds a NaN or infinity.");
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
            [ChecksumKey] = Checksum(tensors).ToString("x8", CultureInfo.InvariantCulture),
        };
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        SafeTensors.Write(path, tensors, metadata);
    }

    /// <summary>CRC-32 over the tensors' bytes in ordinal name order (independent of the file's layout).</summary>
    internal static uint Checksum(IReadOnlyDictionary<string, StoredTensor> tensors)
    {
        uint crc = 0;
        foreach (var key in tensors.Keys.Order(StringComparer.Ordinal)) crc = Crc32.Append(crc, tensors[key].Bytes.Span);
        return crc;
    }

    /// <summary>Restores weights, EMA and optimizer state; returns the step and the generator state.</summary>
    public static (long Step, ulong[] Rng, TrainConfig Config) Load(string path, TrainableNetwork network, TrainableNetwork ema, AdamW optimizer)
    {
        var (file, state) = Open(path);
        foreach (var p in network.Parameters) CopyInto(file, "model." + network.NameOf(p), p.Value);
        foreach (var p in ema.Parameters) CopyInto(file, "ema." + ema.NameOf(p), p.Value);
        foreach (var (p, m, v, _) in optimizer.State)
        {
            string name = network.NameOf(p);
            CopyInto(file, "opt.exp_avg." + name, m);
            CopyInto(file, "opt.exp_avg_sq." + name, v);
            optimizer.RestoreStep(p, state.OptSteps.GetValueOrDefault(name));
        }
        return (state.Step, state.Rng, state.Config);
    }

    /// <summary>Null when the checkpoint reads, its metadata parse, its checksum matches and its values are finite; else the problem (one sentence).</summary>
    public static string? Check(string path)
    {
        try
        {
            _ = Open(path);
            return null;
        }
        catch (MediatorDiTException e)
        {
            return e.Message;
        }
    }

    /// <summary>The newest checkpoint of the run older than <paramref name="beforeStep"/> that passes <see cref="Check"/>.</summary>
    public static (long Step, string Path)? PreviousValid(string runDir, long beforeStep)
    {
        foreach (var (step, path) in List(runDir).Where(c => c.Step < beforeStep).Reverse())
            if (Check(path) is null) return (step, path);
        return null;
    }

    private sealed record State(long Step, ulong[] Rng, TrainConfig Config, Dictionary<string, long> OptSteps);

    private static (SafeTensorsFile File, State State) Open(string path)
    {
        var file = SafeTensors.Read(path);
        var meta = file.Metadata;
        if (!meta.TryGetValue("format", out var format) || format != Format)
            throw new MediatorDiTException($"{path} is not a MediatorDiT training checkpoint (metadata 'format' is '{format ?? "missing"}', expected '{Format}').");
        string Required(string key) => meta.TryGetValue(key, out var value) ? value
            : throw new MediatorDiTException($"{path}: metadata '{key}' is missing; the file is not a complete training checkpoint.");
        MediatorDiTException Malformed(string key, string expected) =>
            new($"{path}: metadata '{key}' must be {expected}, found '{Shorten(meta[key])}'.");

        string stepText = Required("step");
        if (!long.TryParse(stepText, NumberStyles.None, CultureInfo.InvariantCulture, out long step))
            throw Malformed("step", "a non-negative integer");
        string[] words = Required("rng").Split(',');
        var rng = new ulong[words.Length];
        if (words.Length != 6 || !words.Select((w, i) => ulong.TryParse(w, NumberStyles.None, CultureInfo.InvariantCulture, out rng[i])).All(ok => ok))
            throw Malformed("rng", "6 comma-separated unsigned integers (the generator state)");
        Dictionary<string, long>? optSteps;
        try { optSteps = JsonSerializer.Deserialize<Dictionary<string, long>>(Required("opt_steps")); }
        catch (JsonException) { optSteps = null; }
        if (optSteps is null || optSteps.Values.Any(s => s < 0))
            throw Malformed("opt_steps", "a JSON object of non-negative per-parameter step counts");
        var config = TrainConfig.FromJson(Required("config"), $"{path} (metadata 'config')");

        VerifyData(file);
        return (file, new State(step, rng, config, optSteps));
    }

    /// <summary>Throws when the tensor bytes do not match the stored checksum (if any) or hold a NaN or infinity.</summary>
    internal static void VerifyData(SafeTensorsFile file)
    {
        string path = file.Path;
        var meta = file.Metadata;
        if (meta.TryGetValue(ChecksumKey, out var stored))
        {
            if (!uint.TryParse(stored, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out uint expected) || stored.Length != 8)
                throw new MediatorDiTException($"{path}: metadata '{ChecksumKey}' must be 8 hexadecimal digits, found '{Shorten(stored)}'.");
            uint actual = Checksum(file.Tensors);
            if (actual != expected)
                throw new MediatorDiTException(string.Create(CultureInfo.InvariantCulture,
                    $"{path}: the tensor data does not match its checksum (metadata '{ChecksumKey}' is {stored}, the data gives {actual:x8}); the file is corrupt."));
        }
        foreach (var (key, tensor) in file.Tensors)
        {
            bool finite = tensor.DType == DType.F32
                ? TensorPrimitives.IsFiniteAll<float>(MemoryMarshal.Cast<byte, float>(tensor.Bytes.Span))
                : TensorPrimitives.IsFiniteAll<float>(tensor.ToFloat().Span);
            if (!finite)
                throw new MediatorDiTException($"{path}: tensor '{key}' holds a NaN or infinity; the checkpoint is unusable.");
        }
    }

    private static string Shorten(string value) => value.Length <= 60 ? value : value[..57] + "...";

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

    /// <summary>Deletes all but the newest <paramref name="keep"/> checkpoints, never the one of step <paramref name="protect"/>.</summary>
    public static void Prune(string runDir, int keep, long? protect = null)
    {
        var all = List(runDir);
        foreach (var (step, path) in all.Take(Math.Max(0, all.Count - keep)))
            if (step != protect) File.Delete(path);
    }
}
