using System.CommandLine;
using System.Diagnostics;
using MediatorDiT.Cli.Rendering;
using MediatorDiT.Data;
using MediatorDiT.Models.Vae;
using MediatorDiT.Tensors;

namespace MediatorDiT.Cli.Commands;

/// <summary>
/// `mdit encode-latents --images DIR --vae W --out F.npz`: a folder of class sub-folders of images (PNG, JPEG, WebP) encoded
/// into the latents the trainer reads (`--dataset latents:F.npz`), streamed image by image.
/// </summary>
public static class EncodeLatentsCommand
{
    public static Command Create()
    {
        var images = new Option<string>("--images") { Description = "folder with one sub-folder of images (.png, .jpg/.jpeg/.JPEG, .webp) per class", Required = true };
        var vae = new Option<string>("--vae") { Description = "VAE weights (diffusers .safetensors or .bin/.pt)", Required = true };
        var vaeConfig = new Option<string?>("--vae-config") { Description = "the VAE's config.json when it is neither beside the weights nor to be read off their shapes" };
        var output = new Option<string>("--out") { Description = "latents file to write (.npz with 'latents' and 'labels')", Required = true };
        var imageSize = new Option<int>("--image-size") { Description = $"side of the ADM centre crop in pixels (a multiple of 8, at most {OptionValues.MaxImageSize})", DefaultValueFactory = _ => 256 }.ImageSize();
        var hflip = new Option<bool>("--hflip") { Description = "also store the horizontally flipped copy of every image" };
        var mean = new Option<bool>("--mean") { Description = "store the posterior mean instead of a posterior sample" };
        var seed = new Option<ulong>("--seed") { DefaultValueFactory = _ => 0 };
        var threads = new Option<int?>("--threads").Threads();
        var noProgress = new Option<bool>("--no-progress");
        var command = new Command("encode-latents", "Encode a folder of class sub-folders of images (PNG, JPEG, WebP) into VAE latents for training.")
        {
            images, vae, vaeConfig, output, imageSize, hflip, mean, seed, threads, noProgress,
        };
        var limitOptions = new InputLimitOptions(command, arrays: false);
        command.SetAction((p, token) => CliApp.Guard(() =>
        {
            using var compute = ComputeContext.WithThreads(p.GetValue(threads)).Use();
            var limits = limitOptions.Read(p);
            string outPath = CliApp.OutputFile(p.GetValue(output)!);
            if (!outPath.EndsWith(LatentExtraction.DefaultExtension, StringComparison.OrdinalIgnoreCase))
                throw new MediatorDiTException($"--out '{outPath}' must name an .npz file (arrays 'latents' and 'labels').");
            string folder = p.GetValue(images)!;
            _ = ImageFolderListing.Read(folder); // a bad folder fails before the VAE is loaded
            var pipeline = VaePipeline.Load(p.GetValue(vae)!, p.GetValue(vaeConfig));
            var clock = Stopwatch.StartNew();
            using var renderer = ProgressRenderer.Create(p.GetValue(noProgress));
            var progress = new ImmediateProgress<LatentExtractionProgress>(r =>
            {
                if (r.Warning is string w) renderer.Message($"warning: {w}");
                else renderer.Report(r.Done, r.Total, $"{clock.Elapsed.TotalSeconds:F1} s");
            });
            var summary = LatentExtraction.Run(folder, pipeline, outPath, new LatentExtractionOptions
            {
                ImageSize = p.GetValue(imageSize),
                HorizontalFlip = p.GetValue(hflip),
                SamplePosterior = !p.GetValue(mean),
                Seed = p.GetValue(seed),
                Limits = limits,
            }, progress, token);
            renderer.Done();
            Console.WriteLine($"encoded {summary.Images} images of {summary.NumClasses} classes into {summary.Latents} latents " +
                              $"({summary.LatentChannels}x{summary.LatentSize}x{summary.LatentSize}, times {pipeline.LatentScale}) in {clock.Elapsed.TotalSeconds:F1} s -> {outPath}; " +
                              $"skipped {summary.SkippedFiles.Count} unreadable image file{(summary.SkippedFiles.Count == 1 ? "" : "s")}");
            return 0;
        }, token));
        return command;
    }
}
