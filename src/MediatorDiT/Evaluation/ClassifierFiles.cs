using MediatorDiT.IO;

namespace MediatorDiT.Evaluation;

/// <summary>
/// Where the shipped classifiers live: <c>models/classifier-&lt;dataset&gt;.safetensors</c> in the repository.
/// The folder is found as <see cref="ShippedModels"/> finds every shipped file.
/// </summary>
public static class ClassifierFiles
{
    /// <summary>The environment variable naming a models folder (<see cref="ShippedModels.ModelsDirVariable"/>).</summary>
    public const string ModelsDirVariable = ShippedModels.ModelsDirVariable;

    /// <summary>The file name of <paramref name="dataset"/>'s classifier, e.g. "classifier-fashion-mnist.safetensors".</summary>
    /// <param name="dataset">A built-in dataset's name.</param>
    public static string FileName(string dataset) => $"classifier-{dataset}.safetensors";

    /// <summary>The default classifier of <paramref name="dataset"/>, or a clear error naming where it was looked for.</summary>
    public static string DefaultPath(string dataset)
    {
        string name = FileName(dataset);
        if (ShippedModels.TryFind(name, out var looked) is string path) return path;
        throw new MediatorDiTException($"no classifier for '{dataset}' was found (looked for {string.Join(", ", looked)}); pass --classifier PATH, set {ModelsDirVariable}, or train one with `mdit train-classifier --dataset {dataset}`.");
    }
}
