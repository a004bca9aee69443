using System.Globalization;
using System.Text.Json;
using MediatorDiT.Data;
using MediatorDiT.IO;
using MediatorDiT.Tensors;

namespace MediatorDiT.Evaluation;

/// <summary>Images read from disk for evaluation, (N, C, H, W) in [-1, 1], with the labels they were generated for when known.</summary>
public sealed record SampleSet(Tensor Images, int[]? Labels, string Source, string LabelSource)
{
    /// <summary>Fails, naming the label source and the first offending label, unless every label is one of the classifier's <paramref name="numClasses"/> classes.</summary>
    public void CheckLabels(int numClasses)
    {
        if (Labels is null) return;
        string where = LabelSource.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? $"{LabelSource}:" : $"{Source}: '{LabelSource}'";
        for (int i = 0; i < Labels.Length; i++)
            if ((uint)Labels[i] >= (uint)numClasses)
                throw new MediatorDiTException($"{where} gives image {i} the label {Labels[i]}, but the classifier knows {numClasses} classes (labels 0..{numClasses - 1}).");
    }
}

/// <summary>
/// Reads what <c>mdit sample</c> writes: a <c>.npz</c> whose <c>arr_0</c> is uint8 (N, H, W, C) (or (N, H, W)
/// grey), or a folder of images (<c>000000.png</c>, ...; PNG, JPEG or WebP, <see cref="ImageFile"/>; <c>grid.png</c> is skipped). Labels come from
/// <c>--labels-from</c>: an array of the npz (e.g. <c>arr_1</c>, any integer dtype, (N)), a run.json
/// (its <c>samples</c> list: for an npz in record order, which is the npz's order; for a folder by each
/// record's <c>index</c>, the number in the file name), or <c>none</c>. Without it: the npz's
/// <c>arr_1</c> if present, else a <c>run.json</c> beside the samples, else no labels. Sizes are bounded by
/// <see cref="InputLimits"/> (pixels per image, elements per array) and labels by its class maximum.
/// </summary>
public static class SampleFiles
{
    /// <summary>Reads the samples at <paramref name="path"/> and their labels, as described above.</summary>
    /// <param name="path">An .npz of samples or a folder of images.</param>
    /// <param name="labelsFrom">An npz array name, a run.json path, or "none"; null: found as described above.</param>
    /// <param name="limits">bounds on what is read; <see cref="InputLimits.Default"/> when null</param>
    /// <exception cref="MediatorDiTException">The path, the samples or the labels cannot be read or do not fit.</exception>
    public static SampleSet Load(string path, string? labelsFrom = null, InputLimits? limits = null)
    {
        limits ??= InputLimits.Default;
        if (Directory.Exists(path)) return LoadFolder(path, labelsFrom, limits);
        if (!File.Exists(path)) throw new MediatorDiTException($"--samples {path}: is neither a file nor a folder.");
        if (!path.EndsWith(".npz", StringComparison.OrdinalIgnoreCase))
            throw new MediatorDiTException($"--samples {path}: expected a .npz file (as `mdit sample --npz` writes) or a folder of images ({ImageFile.ExtensionList}).");
        return LoadNpz(path, labelsFrom, limits);
    }

    private static SampleSet LoadNpz(string path, string? labelsFrom, InputLimits limits)
    {
        using var npz = new NpzReader(path, limits);
        var header = npz.GetHeader("arr_0");
        if (header.DType != DType.U8 || header.Shape.Length is not (3 or 4) || (header.Shape.Length == 4 && header.Shape[3] is not (1 or 3)))
            throw new MediatorDiTException($"{path}: 'arr_0' must be uint8 (N, H, W, C) with C = 1 or 3, or (N, H, W), but is {header}.");
        var stored = npz.Read("arr_0");
        int n = header.Shape[0], h = header.Shape[1], w = header.Shape[2], c = header.Shape.Length == 4 ? header.Shape[3] : 1;
        if (n == 0) throw new MediatorDiTException($"{path}: 'arr_0' holds no images.");
        var images = ImageConversion.FromBytes(stored.Bytes.Span, n, h, w, c);

        string beside = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, "run.json");
        string? source = labelsFrom ?? (npz.Contains("arr_1") ? "arr_1" : File.Exists(beside) ? beside : null);
        if (source is null || source.Equals("none", StringComparison.OrdinalIgnoreCase)) return new SampleSet(images, null, path, "none");
        int[] labels;
        if (source.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
        {
            var records = ReadRunRecord(source);
            if (records.Count != n)
                throw new MediatorDiTException($"{source}: records {records.Count} samples, but {path} holds {n} images.");
            labels = records.Select((r, i) => CheckLabel(r.Label, $"{source}:", i, limits)).ToArray();
        }
        else
        {
            if (!npz.Contains(source))
                throw new MediatorDiTException($"--labels-from {source}: {path} has no such array (it has {string.Join(", ", npz.Names)}); name an array, a run.json, or none.");
            long[] values = npz.Read(source).ToInt64();
            if (values.Length != n) throw new MediatorDiTException($"{path}: '{source}' holds {values.Length} labels for {n} images.");
            labels = values.Select((v, i) => CheckLabel(v, $"{path}: '{source}'", i, limits)).ToArray();
        }
        return new SampleSet(images, labels, path, source);
    }

    /// <summary>A label as a class index, refused in one sentence when negative or not below <see cref="InputLimits.MaxClasses"/>.</summary>
    private static int CheckLabel(long value, string where, int image, InputLimits limits) =>
        value >= 0 && value < limits.MaxClasses ? (int)value
            : throw new MediatorDiTException($"{where} gives image {image} the label {value}, but labels are class indices 0..{limits.MaxClasses - 1}.");

    private static SampleSet LoadFolder(string folder, string? labelsFrom, InputLimits limits)
    {
        var files = Directory.GetFiles(folder).Where(f => ImageFile.HasImageExtension(f) && !Path.GetFileName(f).Equals("grid.png", StringComparison.OrdinalIgnoreCase))
            .OrderBy(f => f, StringComparer.Ordinal).ToArray();
        if (files.Length == 0) throw new MediatorDiTException($"--samples {folder}: holds no {ImageFile.ExtensionList} images (besides grid.png).");
        var decoded = new DecodedImage[files.Length];
        ParallelLoop.For(files.Length, i => decoded[i] = ImageFile.Read(files[i], limits));
        int h = decoded[0].Height, w = decoded[0].Width, c = decoded[0].Channels == 1 ? 1 : 3;
        var bytes = new byte[(long)files.Length * h * w * c];
        for (int i = 0; i < files.Length; i++)
        {
            var image = c == 1 ? decoded[i].ToGrey() : decoded[i].ToRgb();
            if (image.Height != h || image.Width != w || (decoded[i].Channels == 1) != (c == 1))
                throw new MediatorDiTException($"{files[i]}: is {decoded[i]}, but {files[0]} is {decoded[0]}; all samples must share one size and colour type.");
            image.Pixels.CopyTo(bytes.AsSpan(i * h * w * c));
        }
        var images = ImageConversion.FromBytes(bytes, files.Length, h, w, c);

        string beside = Path.Combine(folder, "run.json");
        string? source = labelsFrom ?? (File.Exists(beside) ? beside : null);
        if (source is null || source.Equals("none", StringComparison.OrdinalIgnoreCase)) return new SampleSet(images, null, folder, "none");
        if (!source.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
            throw new MediatorDiTException($"--labels-from {source}: a folder of images takes its labels from a run.json (or none).");
        var byIndex = new Dictionary<int, int>();
        foreach (var r in ReadRunRecord(source)) byIndex[r.Index] = CheckLabel(r.Label, $"{source}:", r.Index, limits);
        var labels = new int[files.Length];
        for (int i = 0; i < files.Length; i++)
        {
            string stem = Path.GetFileNameWithoutExtension(files[i]);
            if (!int.TryParse(stem, NumberStyles.None, CultureInfo.InvariantCulture, out int index) || !byIndex.TryGetValue(index, out labels[i]))
                throw new MediatorDiTException($"{source}: has no sample record for {files[i]} (records are matched by the number in the file name).");
        }
        return new SampleSet(images, labels, folder, source);
    }

    /// <summary>The (index, label) pairs of a run.json's <c>samples</c> list, in order.</summary>
    public static IReadOnlyList<(int Index, int Label)> ReadRunRecord(string path)
    {
        if (!File.Exists(path)) throw new MediatorDiTException($"--labels-from {path}: the file does not exist.");
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            if (!doc.RootElement.TryGetProperty("samples", out var samples) || samples.ValueKind != JsonValueKind.Array)
                throw new MediatorDiTException($"{path}: has no 'samples' list (the run record `mdit sample` writes).");
            return samples.EnumerateArray().Select(s => (s.GetProperty("index").GetInt32(), s.GetProperty("label").GetInt32())).ToList();
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new MediatorDiTException($"{path}: is not a readable run record ({e.Message.TrimEnd('.')}); each sample needs 'index' and 'label'.", e);
        }
    }
}
