using MediatorDiT.IO;
using MediatorDiT.Models.Vae;
using MediatorDiT.Tensors;

namespace MediatorDiT.Data;

/// <summary>How <see cref="LatentExtraction.Run"/> encodes a folder.</summary>
public sealed record LatentExtractionOptions
{
    /// <summary>Side S of the ADM centre crop, in pixels (a multiple of the VAE's downsampling factor).</summary>
    public int ImageSize { get; init; } = 256;

    /// <summary>Also write the horizontally flipped copy of every image, right after it.</summary>
    public bool HorizontalFlip { get; init; }

    /// <summary>Store a posterior sample (fast-DiT's extract_features) rather than the posterior mean.</summary>
    public bool SamplePosterior { get; init; } = true;

    /// <summary>Seeds the posterior samples, so a run is repeatable.</summary>
    public ulong Seed { get; init; }

    /// <summary>Bounds on the images read; a file over them is skipped like an unreadable one.</summary>
    public InputLimits Limits { get; init; } = InputLimits.Default;
}

/// <summary>One report per image encoded (or skipped).</summary>
public readonly record struct LatentExtractionProgress(int Done, int Total, string? Warning);

/// <summary>What a run wrote.</summary>
public sealed record LatentExtractionSummary(string Output, int Images, int Latents, int NumClasses, IReadOnlyList<string> SkippedFiles, int LatentChannels, int LatentSize);

/// <summary>
/// Encodes a folder of class sub-folders of images (PNG, JPEG, WebP; <see cref="ImageFolderListing"/>) into the latent
/// format the trainer reads (<see cref="LatentDataset"/>): an .npz with <c>latents</c> (N, C, S/f, S/f)
/// float32, already multiplied by the latent scale (0.18215), and <c>labels</c> (N) int64. Each image is
/// converted to RGB and cut with ADM's centre crop (<see cref="CenterCrop"/>), mapped to [-1, 1] and
/// encoded alone, so memory holds one image and the VAE's workspace whatever the folder's size; the
/// latents are streamed into the archive, which only appears, complete, at the end. Every file is
/// decoded once up front to count the readable ones (the archive's header needs N); a file that cannot
/// be decoded is skipped with a warning naming it, and counted.
/// </summary>
public static class LatentExtraction
{
    /// <summary>The output's required extension.</summary>
    public const string DefaultExtension = ".npz";

    /// <summary>Encodes every readable image below <paramref name="folder"/> into <paramref name="outputPath"/>.</summary>
    /// <param name="folder">A folder of class sub-folders of images.</param>
    /// <param name="vae">The VAE (RGB input) and its latent scale.</param>
    /// <param name="outputPath">The .npz to write; it appears only when complete.</param>
    /// <param name="options">Crop size, flips, posterior sampling, seed and limits.</param>
    /// <param name="progress">Receives one report per image.</param>
    /// <param name="cancellationToken">Stops the run before the archive is completed.</param>
    /// <exception cref="MediatorDiTException">The size does not suit the VAE, the VAE is not RGB, the output is no .npz, or the folder is unusable.</exception>
    public static LatentExtractionSummary Run(string folder, VaePipeline vae, string outputPath, LatentExtractionOptions options,
        IProgress<LatentExtractionProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        int f = vae.Vae.Config.DownsampleFactor, size = options.ImageSize;
        if (size < 1 || size % f != 0)
            throw new MediatorDiTException($"the image size {size} must be a positive multiple of the VAE's downsampling factor {f}.");
        if (vae.Vae.Config.InChannels != 3)
            throw new MediatorDiTException($"the VAE takes {vae.Vae.Config.InChannels}-channel images, but image folders give RGB.");
        if (!outputPath.EndsWith(DefaultExtension, StringComparison.OrdinalIgnoreCase))
            throw new MediatorDiTException($"{outputPath}: latents are written as an .npz archive (arrays 'latents' and 'labels'); name the output *.npz.");
        var listing = ImageFolderListing.Read(folder);

        // Pass 1: which files decode (in parallel; nothing is kept but the verdict).
        var readable = new bool[listing.Files.Count];
        var errors = new string?[listing.Files.Count];
        Parallel.For(0, listing.Files.Count, new ParallelOptions { CancellationToken = cancellationToken, MaxDegreeOfParallelism = ComputeContext.Current.Threads }, i =>
        {
            try
            {
                _ = ImageFile.Read(listing.Files[i].Path, options.Limits);
                readable[i] = true;
            }
            catch (Exception ex) when (ex is MediatorDiTException or InvalidDataException or IOException)
            {
                errors[i] = ex.Message.TrimEnd('.');
            }
        });
        var skipped = new List<string>();
        for (int i = 0; i < errors.Length; i++)
        {
            if (errors[i] is null) continue;
            skipped.Add(listing.Files[i].Path);
            progress?.Report(new LatentExtractionProgress(0, listing.Files.Count, $"skipped {listing.Files[i].Path}, it is not a readable image ({errors[i]})"));
        }
        var keep = Enumerable.Range(0, readable.Length).Where(i => readable[i]).ToArray();
        if (keep.Length == 0)
            throw new MediatorDiTException($"{folder}: none of its {listing.Files.Count} image files could be decoded.");

        int copies = options.HorizontalFlip ? 2 : 1, count = keep.Length * copies;
        int latentChannels = vae.Vae.Config.LatentChannels, h = size / f, perLatent = latentChannels * h * h;
        var labels = new long[count];
        var rng = new RandomSource(options.Seed);
        var image = new Tensor(1, 3, size, size);
        using var writer = new NpzWriter(outputPath);
        var latentsArray = writer.BeginArray(LatentDataset.LatentsKey, DType.F32, count, latentChannels, h, h);
        int written = 0;
        for (int k = 0; k < keep.Length; k++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var (path, label) = listing.Files[keep[k]];
            DecodedImage rgb;
            try { rgb = ImageFile.Read(path, options.Limits).ToRgb(); }
            catch (Exception ex) when (ex is MediatorDiTException or InvalidDataException or IOException)
            {
                throw new MediatorDiTException($"{path}: decoded in the first pass but not now ({ex.Message.TrimEnd('.')}); was the folder changed while being encoded?", ex);
            }
            byte[] cropped = CenterCrop.Apply(rgb.Pixels, rgb.Width, rgb.Height, 3, size);
            ImageTransforms.InterleavedBytesToSignedPlanes(cropped, image.Span, 3);
            for (int copy = 0; copy < copies; copy++)
            {
                if (copy == 1) ImageTransforms.FlipHorizontal(image.Span, new SampleShape(3, size, size));
                var latent = vae.EncodeToLatents(image, options.SamplePosterior ? rng : null, cancellationToken);
                latentsArray.Write(latent.Span[..perLatent]);
                labels[written++] = label;
            }
            progress?.Report(new LatentExtractionProgress(k + 1, keep.Length, null));
        }
        writer.BeginArray(LatentDataset.LabelsKey, DType.I64, count).Write(labels);
        writer.Complete();
        return new LatentExtractionSummary(outputPath, keep.Length, count, listing.ClassNames.Count, skipped, latentChannels, h);
    }
}
