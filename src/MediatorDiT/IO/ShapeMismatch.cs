namespace MediatorDiT.IO;

/// <summary>A state-dict entry whose shape differs from the model parameter of the same name.</summary>
public sealed record ShapeMismatch(string Name, int[] Expected, int[] Found)
{
    /// <summary>The key with the file's and the model's shapes, for messages.</summary>
    public override string ToString() =>
        $"'{Name}' has shape [{StoredTensor.FormatShape(Found)}] but the model expects [{StoredTensor.FormatShape(Expected)}]";
}
