using MediatorDiT.Data;
using MediatorDiT.IO;

namespace MediatorDiT.Training;

/// <summary>Opens the dataset a <see cref="TrainConfig"/> names: a built-in one, latents, or an image folder.</summary>
public static class TrainingData
{
    /// <param name="limits">bounds on the files read; <see cref="InputLimits.Default"/> when null</param>
    public static IDataset Open(TrainConfig config, IProgress<string>? progress, CancellationToken token, InputLimits? limits = null)
    {
        string spec = config.Dataset;
        if (spec.StartsWith("latents:", StringComparison.Ordinal))
            return LatentDataset.Load(RequirePath(spec["latents:".Length..], "latents"), limits: limits);
        if (spec.StartsWith("folder:", StringComparison.Ordinal))
            return ImageFolderDataset.Load(RequirePath(spec["folder:".Length..], "folder"), config.ImageSize, progress, token, limits);
        if (BuiltInDataset.Find(spec) is null)
            throw new MediatorDiTException(
                $"unknown dataset '{spec}'; expected fashion-mnist, mnist, latents:PATH (.safetensors/.npz/.npy) or folder:PATH (class sub-folders of PNGs).");
        return PixelDataset.Open(spec, DatasetSplit.Train, new PixelPreprocessing { TargetSize = config.ImageSize }, config.DataDir, progress, token);
    }

    private static string RequirePath(string path, string kind)
    {
        if (path.Length == 0) throw new MediatorDiTException($"dataset '{kind}:' needs a path after the colon.");
        if (!File.Exists(path) && !Directory.Exists(path))
            throw new MediatorDiTException($"dataset {kind} path '{path}' does not exist.");
        return path;
    }
}
