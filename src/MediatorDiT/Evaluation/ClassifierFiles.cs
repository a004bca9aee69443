namespace MediatorDiT.Evaluation;

/// <summary>
/// Where the shipped classifiers live: <c>models/classifier-&lt;dataset&gt;.safetensors</c> in the repository.
/// The folder is found from <c>$MDIT_MODELS_DIR</c>, else by walking up from the executable's folder and
/// then from the working directory to the first folder holding <c>models/</c> with that file, so
/// the default works from a build output (bin/Release/...), the repository root or any sub-folder.
/// </summary>
public static class ClassifierFiles
{
    public const string ModelsDirVariable = "MDIT_MODELS_DIR";

    public static string FileName(string dataset) => $"classifier-{dataset}.safetensors";

    /// <summary>The default classifier of <paramref name="dataset"/>, or a clear error naming where it was looked for.</summary>
    public static string DefaultPath(string dataset)
    {
        string name = FileName(dataset);
        var looked = new List<string>();
        if (Environment.GetEnvironmentVariable(ModelsDirVariable) is { Length: > 0 } dir)
        {
            string candidate = Path.Combine(Path.GetFullPath(dir), name);
            if (File.Exists(candidate)) return candidate;
            looked.Add(candidate);
        }
        foreach (string start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
        {
            for (var folder = new DirectoryInfo(start); folder is not null; folder = folder.Parent)
            {
                string candidate = Path.Combine(folder.FullName, "models", name);
                if (File.Exists(candidate)) return candidate;
            }
            looked.Add(Path.Combine(start, "**", "models", name));
        }
        throw new MediatorDiTException($"no classifier for '{dataset}' was found (looked for {string.Join(", ", looked)}); pass --classifier PATH, set {ModelsDirVariable}, or train one with `mdit train-classifier --dataset {dataset}`.");
    }
}
