using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using MediatorDiT.IO;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace MediatorDiT.Data;

/// <summary>
/// Pre-extracted latents (N, C, H, W) with class labels (N), for training in latent space (a VAE
/// encoded the images beforehand, as fast-DiT's extract_features does). Read from a
/// <c>.safetensors</c> file with tensors <c>latents</c> (F32, F16 or BF16) and <c>labels</c>
/// (I64 or another integer dtype), a <c>.npz</c> archive with arrays of those names, or a pair of
/// <c>.npy</c> files (see <see cref="Load"/>). Values are kept in the stored dtype and widened per sample, then
/// multiplied by <see cref="Scale"/> (1 when the file already holds scaled latents, e.g. 0.18215 x
/// the VAE's output, as fast-DiT writes them).
/// </summary>
public sealed class LatentDataset : IDataset
{
    /// <summary>The name of the latents tensor (N, C, H, W) in a file.</summary>
    public const string LatentsKey = "latents";
    /// <summary>The name of the labels tensor (N) in a file.</summary>
    public const string LabelsKey = "labels";

    private readonly StoredTensor _latents;
    private readonly int[] _labels;

    /// <summary>
    /// Builds the dataset from tensors already read; <paramref name="source"/> names the file in
    /// errors. NumClasses is <paramref name="numClasses"/> when given (every label must be below it),
    /// else the largest label + 1.
    /// </summary>
    /// <param name="latents">(N, C, H, W), F32, F16 or BF16</param>
    /// <param name="labels">(N) non-negative class indices of an integer dtype</param>
    /// <param name="source">names the file in errors</param>
    /// <param name="numClasses">the class count; null: the largest label + 1</param>
    /// <param name="scale">multiplies every sample as it is read</param>
    /// <param name="limits">the class maximum applied when <paramref name="numClasses"/> is not given; <see cref="InputLimits.Default"/> when null</param>
    /// <exception cref="MediatorDiTException">A dtype, shape, count or label is not as described.</exception>
    public LatentDataset(StoredTensor latents, StoredTensor labels, string source, int? numClasses = null, float scale = 1f, InputLimits? limits = null)
    {
        limits ??= InputLimits.Default;
        Source = source;
        Scale = scale;
        if (latents.DType is not (DType.F32 or DType.F16 or DType.BF16))
            throw Bad(source, $"tensor '{LatentsKey}' has dtype {latents.DType.SafeTensorsName()}, but F32, F16 or BF16 was expected");
        if (latents.Shape.Length != 4)
            throw Bad(source, $"tensor '{LatentsKey}' has shape [{latents.ShapeString}], but 4 axes (N, C, H, W) were expected");
        if (labels.DType.IsFloatingPoint())
            throw Bad(source, $"tensor '{LabelsKey}' has dtype {labels.DType.SafeTensorsName()}, but integer class indices (I64) were expected");
        if (labels.Shape.Length != 1)
            throw Bad(source, $"tensor '{LabelsKey}' has shape [{labels.ShapeString}], but one axis (N) was expected");
        int count = latents.Shape[0];
        if (labels.Shape[0] != count)
            throw Bad(source, $"tensor '{LabelsKey}' holds {labels.Shape[0]} labels but '{LatentsKey}' holds {count} latents; the counts must be equal");
        if (count == 0)
            throw Bad(source, $"tensor '{LatentsKey}' holds no latents");

        long[] stored = labels.ToInt64();
        _labels = new int[count];
        long largest = 0;
        for (int i = 0; i < count; i++)
        {
            if (stored[i] < 0 || stored[i] > int.MaxValue)
                throw Bad(source, $"label {i} is {stored[i]}, but labels must be class indices 0, 1, 2, ...");
            if (numClasses is int limit && stored[i] >= limit)
                throw Bad(source, $"label {i} is {stored[i]}, but the dataset was opened with {limit} classes (labels 0..{limit - 1})");
            // Without a class count the largest label sets it, and each class is a row of the label table.
            if (numClasses is null && stored[i] >= limits.MaxClasses)
                throw Bad(source, $"label {i} is {stored[i]}, but without num_classes in the file at most {InputLimits.Count(limits.MaxClasses)} classes (labels 0..{limits.MaxClasses - 1}) are accepted");
            largest = Math.Max(largest, stored[i]);
            _labels[i] = (int)stored[i];
        }
        NumClasses = numClasses ?? (int)(largest + 1);
        _latents = latents;
        SampleShape = new SampleShape(latents.Shape[1], latents.Shape[2], latents.Shape[3]);
    }

    /// <summary>
    /// Reads latents and labels from <paramref name="path"/>: a .safetensors file or a .npz archive
    /// holding 'latents' and 'labels'; a .npy file of latents whose name contains "latents", with
    /// the labels in the file named the same with "labels" in its place (latents.npy and labels.npy,
    /// train_latents.npy and train_labels.npy); or a folder holding latents.npy and labels.npy.
    /// A safetensors metadata entry <c>num_classes</c> counts as <paramref name="numClasses"/> when that is not given.
    /// Arrays and labels are bounded by <paramref name="limits"/> (<see cref="InputLimits.Default"/> when null).
    /// </summary>
    public static LatentDataset Load(string path, int? numClasses = null, float scale = 1f, InputLimits? limits = null)
    {
        limits ??= InputLimits.Default;
        if (Directory.Exists(path))
            return FromNpyPair(Path.Combine(path, LatentsKey + ".npy"), Path.Combine(path, LabelsKey + ".npy"), numClasses, scale, limits);
        string extension = Path.GetExtension(path).ToLowerInvariant();
        switch (extension)
        {
            case ".safetensors":
                return FromSafeTensors(path, numClasses, scale, limits);
            case ".npz":
                using (var archive = new NpzReader(path, limits))
                {
                    CheckKeys(path, archive.Names, archive.Contains);
                    return new LatentDataset(archive.Read(LatentsKey), archive.Read(LabelsKey), path, numClasses, scale, limits);
                }
            case ".npy":
                string name = Path.GetFileName(path);
                int at = name.LastIndexOf(LatentsKey, StringComparison.Ordinal);
                if (at < 0)
                    throw new MediatorDiTException($"{path}: a .npy file of latents must have '{LatentsKey}' in its name, so that the labels file ('{LabelsKey}' in its place) can be found.");
                string labelsPath = Path.Combine(Path.GetDirectoryName(path) ?? "", name[..at] + LabelsKey + name[(at + LatentsKey.Length)..]);
                return FromNpyPair(path, labelsPath, numClasses, scale, limits);
            default:
                throw new MediatorDiTException($"{path}: latents are read from .safetensors, .npz or .npy files (arrays '{LatentsKey}' and '{LabelsKey}'), but the file ends in '{extension}'.");
        }
    }

    private static LatentDataset FromSafeTensors(string path, int? numClasses, float scale, InputLimits limits)
    {
        SafeTensorsFile file = SafeTensors.Read(path);
        CheckKeys(path, file.Keys, file.Contains);
        if (numClasses is null && file.Metadata.TryGetValue("num_classes", out string? text))
        {
            if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int fromMetadata) || fromMetadata < 1)
                throw Bad(path, $"the metadata entry num_classes is '{text}', but a positive integer was expected");
            if (fromMetadata > limits.MaxClasses)
                throw Bad(path, $"the metadata entry num_classes is {text}, more than the {InputLimits.Count(limits.MaxClasses)} classes accepted");
            numClasses = fromMetadata;
        }
        return new LatentDataset(file.Get(LatentsKey), file.Get(LabelsKey), path, numClasses, scale, limits);
    }

    private static LatentDataset FromNpyPair(string latentsPath, string labelsPath, int? numClasses, float scale, InputLimits limits)
    {
        foreach (string file in new[] { latentsPath, labelsPath })
        {
            if (!File.Exists(file))
                throw new MediatorDiTException($"{file}: does not exist; latents in .npy form need both {Path.GetFileName(latentsPath)} and {Path.GetFileName(labelsPath)} side by side.");
        }
        return new LatentDataset(NpyFormat.Read(latentsPath, limits), NpyFormat.Read(labelsPath, limits), latentsPath, numClasses, scale, limits);
    }

    private static void CheckKeys(string path, IEnumerable<string> keys, Func<string, bool> contains)
    {
        var missing = new[] { LatentsKey, LabelsKey }.Where(k => !contains(k)).ToList();
        if (missing.Count > 0)
            throw Bad(path, $"has no array {string.Join(" or ", missing.Select(k => $"'{k}'"))}; expected '{LatentsKey}' (N, C, H, W) and '{LabelsKey}' (N), found {Describe(keys)}");
    }

    /// <summary>Writes latents (N, C, H, W) and labels (N) in the layout <see cref="Load"/> reads, with num_classes in the metadata.</summary>
    public static void Save(string path, StoredTensor latents, long[] labels, int numClasses)
    {
        var tensors = new Dictionary<string, StoredTensor>
        {
            [LatentsKey] = latents,
            [LabelsKey] = StoredTensor.FromInt64(labels, [labels.Length]),
        };
        SafeTensors.Write(path, tensors, new Dictionary<string, string> { ["num_classes"] = numClasses.ToString(CultureInfo.InvariantCulture) });
    }

    /// <summary>The file the latents came from, as messages name it.</summary>
    public string Source { get; }

    /// <summary>The factor every sample is multiplied by when read.</summary>
    public float Scale { get; }

    /// <inheritdoc/>
    public int Count => _labels.Length;

    /// <inheritdoc/>
    public int NumClasses { get; }

    /// <inheritdoc/>
    public SampleShape SampleShape { get; }

    /// <summary>The dtype the latents are stored in (F32, F16 or BF16); samples are widened to float32.</summary>
    public DType StoredDType => _latents.DType;

    /// <inheritdoc/>
    public void Get(int index, Span<float> sample, out int label)
    {
        if ((uint)index >= (uint)_labels.Length) throw new ArgumentOutOfRangeException(nameof(index), index, $"the dataset has {_labels.Length} samples.");
        int length = SampleShape.Length;
        if (sample.Length != length) throw new ArgumentException($"the sample buffer has {sample.Length} floats, but a sample {SampleShape} has {length}.");
        int elementSize = _latents.DType.ElementSize();
        ReadOnlySpan<byte> bytes = _latents.Bytes.Span.Slice(checked(index * length * elementSize), length * elementSize);
        switch (_latents.DType)
        {
            case DType.F32: ReadSingles(bytes, sample); break;
            case DType.F16: HalfPrecision.HalfToSingle(bytes, sample); break;
            default: HalfPrecision.BFloat16ToSingle(bytes, sample); break;
        }
        if (Scale != 1f) TensorPrimitives.Multiply(sample, Scale, sample);
        label = _labels[index];
    }

    private static void ReadSingles(ReadOnlySpan<byte> bytes, Span<float> destination)
    {
        if (BitConverter.IsLittleEndian)
        {
            MemoryMarshal.Cast<byte, float>(bytes).CopyTo(destination);
            return;
        }
        for (int i = 0; i < destination.Length; i++) destination[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes[(4 * i)..]);
    }

    private static string Describe(IEnumerable<string> keys)
    {
        var list = keys.Take(6).Select(k => $"'{k}'").ToList();
        return list.Count == 0 ? "no tensors" : string.Join(", ", list) + (keys.Count() > 6 ? ", ..." : "");
    }

    private static MediatorDiTException Bad(string source, string problem) =>
        new(string.Create(CultureInfo.InvariantCulture, $"{source}: {problem}."));
}
