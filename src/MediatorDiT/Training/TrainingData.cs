using MediatorDiT.Data;
using MediatorDiT.IO;

namespace MediatorDiT.Training;

/// <summary>Opens the dataset a <see cref="TrainConfig"/> names: a built-in one, latents, or an image folder.</summary>
internal static class TrainingData
{
    /// <summary>The training dataset <paramref name="config"/> names, fetched and cached first for a built-in one.</summary>
    /// <param name="config">The run's config (dataset, image size, data folder).</param>
    /// <param name="progress">Receives download and scan messages.</param>
    /// <param name="token">Cancels a download or a folder scan.</param>
    /// <param name="limits">bounds on the files read; <see cref="InputLimits.Default"/> when null</param>
    /// <exception cref="MediatorDiTException">The dataset is unknown or its path does not exist.</exception>
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
