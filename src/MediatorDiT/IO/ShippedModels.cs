namespace MediatorDiT.IO;

/// <summary>
/// Finds the files shipped in the repository's <c>models/</c> folder (classifiers, the Fashion-MNIST
/// ladder): first in <c>$MDIT_MODELS_DIR</c>, else by walking up from the executable's folder and then
/// from the working directory to the first folder holding <c>models/&lt;relative path&gt;</c>, so the
/// default works from a build output (bin/Release/...), the repository root or any sub-folder.
/// </summary>
public static class ShippedModels
{
    /// <summary>The environment variable naming a models folder that is searched first.</summary>
    public const string ModelsDirVariable = "MDIT_MODELS_DIR";

    /// <summary>
    /// The full path of <paramref name="relativePath"/> (e.g. "fashion-mnist-ladder/m64.safetensors")
    /// under the first models folder that holds it, or null; <paramref name="looked"/> lists where it
    /// was looked for, for the caller's error message.
    /// </summary>
    public static string? TryFind(string relativePath, out IReadOnlyList<string> looked)
    {
        var places = new List<string>();
        looked = places;
        if (Environment.GetEnvironmentVariable(ModelsDirVariable) is { Length: > 0 } dir)
        {
            string candidate = Path.Combine(Path.GetFullPath(dir), relativePath);
            if (File.Exists(candidate)) return candidate;
            places.Add(candidate);
        }
        foreach (string start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
        {
            for (var folder = new DirectoryInfo(start); folder is not null; folder = folder.Parent)
            {
                string candidate = Path.Combine(folder.FullName, "models", relativePath);
                if (File.Exists(candidate)) return candidate;
            }
            places.Add(Path.Combine(start, "**", "models", relativePath));
        }
        return null;
    }
}
