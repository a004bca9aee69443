using MediatorDiT.Tensors;

namespace MediatorDiT.IO;

/// <summary>
/// The contents of a .safetensors file. <see cref="Tensors"/> lists the tensors in the order the
/// header names them (for files written by PyTorch-side tools this is the state-dict order; for
/// files written by <see cref="SafeTensors.Write"/> it is the writer's dtype-then-name order).
/// A file opened with <see cref="SafeTensors.Map"/> keeps the mapping until disposed; disposing one
/// read into memory does nothing.
/// </summary>
public sealed class SafeTensorsFile : IDisposable
{
    private readonly IDisposable? _owner;

    /// <summary>The file the tensors came from (or are to be written to).</summary>
    public string Path { get; }
    /// <summary>The tensors by name, in header order.</summary>
    public IReadOnlyDictionary<string, StoredTensor> Tensors { get; }

    /// <summary>The header's <c>__metadata__</c> map; empty when the file has none.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Contents held in memory (nothing to dispose).</summary>
    /// <param name="path">The file they belong to.</param>
    /// <param name="tensors">The tensors by name.</param>
    /// <param name="metadata">The <c>__metadata__</c> map.</param>
    public SafeTensorsFile(string path, IReadOnlyDictionary<string, StoredTensor> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        Path = path;
        Tensors = tensors;
        Metadata = metadata;
    }

    internal SafeTensorsFile(string path, IReadOnlyDictionary<string, StoredTensor> tensors, IReadOnlyDictionary<string, string> metadata, IDisposable owner)
        : this(path, tensors, metadata)
    {
        _owner = owner;
    }

    /// <summary>Unmaps a mapped file; its tensors cannot be read afterwards.</summary>
    public void Dispose() => _owner?.Dispose();

    /// <summary>The tensor names, in header order.</summary>
    public IEnumerable<string> Keys => Tensors.Keys;

    /// <summary>Whether a tensor is stored under <paramref name="key"/>.</summary>
    /// <param name="key">The tensor name.</param>
    public bool Contains(string key) => Tensors.ContainsKey(key);

    /// <summary>The stored tensor under <paramref name="key"/>; a clear error naming file and key when absent.</summary>
    public StoredTensor Get(string key)
    {
        if (Tensors.TryGetValue(key, out StoredTensor? tensor)) return tensor;
        throw new MediatorDiTException($"{Path}: has no tensor '{key}' ({Tensors.Count} tensors{NearbyKeys(key)}).");
    }

    /// <summary>The tensor as float32 (F16/BF16/F64/integers converted).</summary>
    public Tensor GetFloat(string key) => Get(key).ToFloat();

    /// <summary>The tensor as 64-bit integers; the stored dtype must be an integer type.</summary>
    public long[] GetInt64(string key)
    {
        StoredTensor tensor = Get(key);
        if (!tensor.DType.IsInteger())
            throw new MediatorDiTException($"{Path}: tensor '{key}' has dtype {tensor.DType.SafeTensorsName()}, but integers (I64 or another integer dtype) were expected.");
        return tensor.ToInt64();
    }

    /// <summary>Names a few keys sharing the wanted key's first segment, to hint at typos and prefixes.</summary>
    private string NearbyKeys(string key)
    {
        string prefix = key.Split('.')[0];
        var similar = Tensors.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).Take(3).ToList();
        return similar.Count == 0 ? "" : "; similar keys: " + string.Join(", ", similar);
    }
}
