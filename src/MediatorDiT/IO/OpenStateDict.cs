namespace MediatorDiT.IO;

/// <summary>
/// A state dict whose tensors are still in their file (a memory-mapped safetensors file or an open
/// checkpoint zip) and are read one at a time when converted; dispose it once the tensors are loaded.
/// </summary>
public sealed class OpenStateDict : IDisposable
{
    private readonly IDisposable _owner;

    /// <summary>The file the tensors are in.</summary>
    public string Path { get; }
    /// <summary>The tensors by state-dict key; those still in their file can be read only until disposal.</summary>
    public IReadOnlyDictionary<string, StoredTensor> Tensors { get; }

    /// <summary>The safetensors header's __metadata__ (empty for PyTorch files).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    internal OpenStateDict(string path, IReadOnlyDictionary<string, StoredTensor> tensors, IReadOnlyDictionary<string, string> metadata, IDisposable owner)
    {
        Path = path;
        Tensors = tensors;
        Metadata = metadata;
        _owner = owner;
    }

    /// <summary>
    /// Opens a .safetensors file (memory-mapped) or a PyTorch zip checkpoint (its <paramref name="key"/>
    /// entry, as <see cref="TorchFile.LoadStateDict"/> picks it), told apart by their first bytes.
    /// </summary>
    public static OpenStateDict Open(string path, string? key = null)
    {
        byte[] prefix = InputFile.ReadPrefix(path, 262);
        if (prefix.Length > 8 && prefix[8] == (byte)'{')
        {
            if (key is not null)
                throw new MediatorDiTException($"{path}: is a safetensors file, which holds a single state dict, so the entry '{key}' (meant for PyTorch training checkpoints) does not apply.");
            SafeTensorsFile file = SafeTensors.Map(path);
            return new OpenStateDict(path, file.Tensors, file.Metadata, file);
        }
        if (TorchArchive.HasZipMagic(prefix)) return TorchFile.OpenStateDict(path, key);
        // Legacy files and anything else: the in-memory reader gives the precise error.
        var state = StateDict.Load(path, key);
        return new OpenStateDict(path, state, new Dictionary<string, string>(), new NothingToDispose());
    }

    /// <summary>Unmaps or closes the file; the tensors cannot be read afterwards.</summary>
    public void Dispose() => _owner.Dispose();

    private sealed class NothingToDispose : IDisposable
    {
        public void Dispose() { }
    }
}
