using MediatorDiT.Nn;

namespace MediatorDiT.IO;

/// <summary>
/// State dicts (PyTorch parameter name → tensor) from either file format, and their transfer into
/// and out of a model's <see cref="Parameter"/>s.
/// </summary>
public static class StateDict
{
    private const int ShownKeys = 3;

    /// <summary>
    /// Loads a state dict from a .safetensors file or a PyTorch zip checkpoint, told apart by their
    /// first bytes rather than the extension. <paramref name="key"/> picks the entry of a training
    /// checkpoint ("ema" or "model", see <see cref="TorchFile.LoadStateDict"/>).
    /// </summary>
    public static Dictionary<string, StoredTensor> Load(string path, string? key = null)
    {
        byte[] prefix = InputFile.ReadPrefix(path, 262);
        if (TorchArchive.HasZipMagic(prefix))
            return TorchFile.LoadStateDict(path, key);
        if (LooksLikeSafeTensors(prefix))
        {
            if (key is not null)
                throw new MediatorDiTException($"{path}: is a safetensors file, which holds a single state dict, so the entry '{key}' (meant for PyTorch training checkpoints) does not apply.");
            return new Dictionary<string, StoredTensor>(SafeTensors.Read(path).Tensors, StringComparer.Ordinal);
        }
        if (TorchArchive.LooksLikeLegacyTorchFile(prefix))
            return TorchFile.LoadStateDict(path, key); // reports the legacy format clearly
        string start = Convert.ToHexString(prefix.AsSpan(0, Math.Min(8, prefix.Length)));
        throw new MediatorDiTException($"{path}: is neither a safetensors file nor a PyTorch zip checkpoint (its first bytes are 0x{(start.Length == 0 ? "(none)" : start)}).");
    }

    /// <summary>A safetensors file starts with the header length, then the header's opening brace.</summary>
    private static bool LooksLikeSafeTensors(ReadOnlySpan<byte> prefix) => prefix.Length > 8 && prefix[8] == (byte)'{';

    /// <summary>
    /// Copies each parameter's tensor from <paramref name="state"/> into the model, converting
    /// F16/BF16/F64 to float32. Entries whose shape differs are never loaded. With
    /// <paramref name="strict"/>, any missing, unexpected or mis-shaped key is an error and nothing
    /// is loaded; otherwise what matches is loaded and the report lists the rest.
    /// <paramref name="source"/> names the file in messages.
    /// </summary>
    public static LoadReport LoadInto(IParameterSet model, IReadOnlyDictionary<string, StoredTensor> state, bool strict, string source)
    {
        var loadable = new List<(Parameter Parameter, StoredTensor Stored)>();
        var missing = new List<string>();
        var mismatched = new List<ShapeMismatch>();
        var modelNames = new HashSet<string>(StringComparer.Ordinal);
        foreach (Parameter parameter in model.Parameters)
        {
            if (!modelNames.Add(parameter.Name))
                throw new ArgumentException($"the model has two parameters named '{parameter.Name}'.", nameof(model));
            if (!state.TryGetValue(parameter.Name, out StoredTensor? stored)) missing.Add(parameter.Name);
            else if (!stored.Shape.AsSpan().SequenceEqual(parameter.Value.Shape)) mismatched.Add(new ShapeMismatch(parameter.Name, parameter.Value.Shape, stored.Shape));
            else loadable.Add((parameter, stored));
        }
        var unexpected = state.Keys.Where(k => !modelNames.Contains(k)).ToList();

        if (strict && (missing.Count > 0 || unexpected.Count > 0 || mismatched.Count > 0))
            throw new MediatorDiTException(StrictFailure(source, model, state, missing, unexpected, mismatched));

        foreach (var (parameter, stored) in loadable) stored.CopyTo(parameter.Value.Span);
        return new LoadReport(source, loadable.Select(l => l.Parameter.Name).ToList(), missing, unexpected, mismatched);
    }

    /// <summary>
    /// The model's parameters as a state dict for saving, in model order. Frozen parameters
    /// (pos_embed) are included: the official state dicts carry them.
    /// </summary>
    public static Dictionary<string, StoredTensor> FromParameters(IParameterSet model, DType dtype = DType.F32)
    {
        var state = new Dictionary<string, StoredTensor>(StringComparer.Ordinal);
        foreach (Parameter parameter in model.Parameters)
        {
            if (!state.TryAdd(parameter.Name, StoredTensor.FromFloat(parameter.Value, dtype)))
                throw new ArgumentException($"the model has two parameters named '{parameter.Name}'.", nameof(model));
        }
        return state;
    }

    /// <summary>One sentence: the first problem in full, then the count and first few names of each kind.</summary>
    private static string StrictFailure(string source, IParameterSet model, IReadOnlyDictionary<string, StoredTensor> state,
        List<string> missing, List<string> unexpected, List<ShapeMismatch> mismatched)
    {
        var clauses = new List<string>();
        if (mismatched.Count > 0)
        {
            clauses.Add($"key {mismatched[0]}");
            if (mismatched.Count > 1)
                clauses.Add($"{mismatched.Count} keys have the wrong shape in all: {Few(mismatched.Select(m => $"{m.Name} [{StoredTensor.FormatShape(m.Found)}] vs [{StoredTensor.FormatShape(m.Expected)}]"), mismatched.Count)}");
        }
        if (missing.Count > 0)
        {
            var shapes = model.Parameters.ToDictionary(p => p.Name, p => p.Value.ShapeString, StringComparer.Ordinal);
            clauses.Add($"missing key '{missing[0]}' [{shapes[missing[0]]}] (strict loading)");
            if (missing.Count > 1)
                clauses.Add($"{missing.Count} keys missing in all: {Few(missing, missing.Count)}");
        }
        if (unexpected.Count > 0)
        {
            clauses.Add($"unexpected key '{unexpected[0]}' [{state[unexpected[0]].ShapeString}] that the model does not have");
            if (unexpected.Count > 1)
                clauses.Add($"{unexpected.Count} unexpected keys in all: {Few(unexpected, unexpected.Count)}");
        }
        return $"{source}: {string.Join("; ", clauses)}.";
    }

    private static string Few(IEnumerable<string> items, int count) =>
        string.Join(", ", items.Take(ShownKeys)) + (count > ShownKeys ? ", ..." : "");
}
