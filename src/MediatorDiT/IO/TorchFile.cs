using MediatorDiT.IO.Pickle;

namespace MediatorDiT.IO;

/// <summary>
/// Reads PyTorch checkpoints written by torch.save (the zip format of PyTorch 1.6 and later)
/// without Python and without executing anything from the file.
/// </summary>
public static class TorchFile
{
    /// <summary>The state dicts a training checkpoint may hold, in the order they are preferred.</summary>
    public static IReadOnlyList<string> StateDictKeys { get; } = ["ema", "model", "state_dict"];

    /// <summary>
    /// The whole pickled object graph, with every tensor read: dicts are
    /// Dictionary&lt;object, object?&gt; (keys string or long), lists List&lt;object?&gt;, tuples object?[],
    /// then string, long, double, bool, null, <see cref="StoredTensor"/>, and inert
    /// <see cref="PickledObject"/>s for other Python objects (such as argparse.Namespace).
    /// </summary>
    public static object? Load(string path)
    {
        using TorchArchive archive = TorchArchive.Open(path);
        var unpickler = new TorchUnpickler(archive);
        object? root = unpickler.Unpickle();
        // Storages are read lazily; read them all while the zip is still open.
        foreach (TorchStorage storage in unpickler.Storages) _ = storage.Bytes;
        foreach (StoredTensor tensor in unpickler.Tensors) _ = tensor.Bytes;
        return root;
    }

    /// <summary>
    /// A state dict (parameter name → tensor) from a checkpoint. A bare state dict (torch.save of
    /// model.state_dict(), like the released DiT weights) is returned as is. A training checkpoint
    /// <c>{"model", "ema", "opt", "args"}</c> gives its <paramref name="key"/> entry, by default
    /// "ema" when present, else "model", else "state_dict". Only the chosen tensors are read.
    /// </summary>
    public static Dictionary<string, StoredTensor> LoadStateDict(string path, string? key = null)
    {
        using TorchArchive archive = TorchArchive.Open(path);
        object? root = new TorchUnpickler(archive).Unpickle();
        Dictionary<string, StoredTensor> state = SelectStateDict(root, key, path);
        foreach (StoredTensor tensor in state.Values) _ = tensor.Bytes;
        return state;
    }

    /// <summary>
    /// Like <see cref="LoadStateDict"/>, but reads no tensor yet: each is read from the zip when converted
    /// and dropped afterwards, so loading a checkpoint into a model does not hold the file in memory too.
    /// The archive stays open until the result is disposed.
    /// </summary>
    public static OpenStateDict OpenStateDict(string path, string? key = null)
    {
        TorchArchive archive = TorchArchive.Open(path);
        try
        {
            object? root = new TorchUnpickler(archive) { Streamed = true }.Unpickle();
            return new OpenStateDict(path, SelectStateDict(root, key, path), new Dictionary<string, string>(), archive);
        }
        catch
        {
            archive.Dispose();
            throw;
        }
    }

    private static Dictionary<string, StoredTensor> SelectStateDict(object? root, string? key, string path)
    {
        if (root is PickledObject obj)
            throw new MediatorDiTException($"{path}: holds a pickled {obj.Type.FullName} object, not a state dict; save model.state_dict() (or a dict holding it) instead.");
        if (root is not Dictionary<object, object?> top)
            throw new MediatorDiTException($"{path}: holds {PickleReader.Describe(root)}, not a state dict or a dict of state dicts.");

        if (IsTensorDict(top))
        {
            if (key is not null)
                throw new MediatorDiTException($"{path}: is a bare state dict of {top.Count} tensors with no '{key}' entry; load it without a key.");
            return ToStateDict(top, path, entry: null);
        }

        string present = string.Join(", ", top.Keys.Select(k => k is string s ? $"'{s}'" : k.ToString()));
        if (key is not null)
        {
            if (!top.TryGetValue(key, out object? chosen))
                throw new MediatorDiTException($"{path}: has no entry '{key}'; its top-level keys are {present}.");
            return ToStateDict(chosen, path, key);
        }
        foreach (string candidate in StateDictKeys)
        {
            if (top.TryGetValue(candidate, out object? chosen)) return ToStateDict(chosen, path, candidate);
        }
        throw new MediatorDiTException($"{path}: has none of the entries {string.Join(", ", StateDictKeys.Select(k => $"'{k}'"))} and is not a bare state dict; its top-level keys are {present}.");
    }

    private static bool IsTensorDict(Dictionary<object, object?> dict) =>
        dict.All(kv => kv.Key is string && kv.Value is StoredTensor);

    private static Dictionary<string, StoredTensor> ToStateDict(object? value, string path, string? entry)
    {
        string where = entry is null ? "the state dict" : $"entry '{entry}'";
        if (value is not Dictionary<object, object?> dict)
            throw new MediatorDiTException($"{path}: {where} holds {PickleReader.Describe(value)}, not a state dict.");
        var state = new Dictionary<string, StoredTensor>(dict.Count, StringComparer.Ordinal);
        foreach (var (name, tensor) in dict)
        {
            if (name is not string text)
                throw new MediatorDiTException($"{path}: {where} has the key {PickleReader.Describe(name)}, but state dict keys are strings.");
            if (tensor is not StoredTensor stored)
                throw new MediatorDiTException($"{path}: {where} maps '{text}' to {PickleReader.Describe(tensor)}, not a tensor.");
            state.Add(text, stored);
        }
        return state;
    }
}
