using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using MediatorDiT.Data;
using MediatorDiT.IO;
using MediatorDiT.Models.Vae;
using MediatorDiT.Tensors;

namespace MediatorDiT.Cli.Commands;

/// <summary>
/// `mdit vae decode|encode`: the Stable Diffusion VAE on tensors stored in a file (for parity checks, as
/// `mdit forward` is for the network) or on images. Tensors are raw AutoencoderKL values: decode takes
/// unscaled latents unless --latent-scale is given; encode writes posterior.mean, posterior.logvar and
/// posterior.std. Image inputs (a PNG, JPEG or WebP file, or a folder of them; <see cref="ImageFile"/>) give PNGs (decode: the reconstruction) or
/// scaled latents 'latents' (encode), the form DiT trains on.
/// </summary>
public static class VaeCommand
{
    public static Command Create()
    {
        var command = new Command("vae", "Run the Stable Diffusion VAE (decode or encode) on stored tensors or images (PNG, JPEG, WebP).")
        {
            Build(decode: true),
            Build(decode: false),
        };
        return command;
    }

    private static Command Build(bool decode)
    {
        var weights = new Option<string>("--weights") { Description = "VAE weights (diffusers .safetensors or .bin/.pt, either naming scheme)", Required = true };
        var config = new Option<string?>("--config") { Description = "diffusers config.json (default: beside the weights, else read off the weights' shapes)" };
        var inputs = new Option<string>("--inputs") { Description = "a safetensors file of tensors, or an image file (.png, .jpg, .jpeg, .webp) or a folder of them", Required = true };
        var key = new Option<string>("--key") { Description = decode ? "tensor of latents (B, 4, h, w) to decode" : "tensor of images (B, 3, H, W) in [-1, 1] to encode", DefaultValueFactory = _ => decode ? "z" : "x" };
        var output = new Option<string>("--out") { Description = decode ? "O.safetensors (tensor 'decoded'), a .png file or a folder for PNGs" : "O.safetensors", Required = true };
        var latentScale = new Option<float?>("--latent-scale") { Description = decode ? "divide the latents by this before decoding (0.18215 for latents made by DiT/SiT sampling)" : "scale of the 'latents' written for image inputs (default the config's scaling_factor, 0.18215)" };
        var imageSize = new Option<int?>("--image-size") { Description = $"image inputs: ADM centre crop to S x S first, S a multiple of 8 up to {OptionValues.MaxImageSize} (otherwise all images must share one size, a multiple of the VAE's factor)" }.ImageSize();
        var sample = new Option<bool>("--sample") { Description = "image inputs: a posterior sample instead of the mean" };
        var seed = new Option<ulong>("--seed") { DefaultValueFactory = _ => 0 };
        var threads = new Option<int?>("--threads").Threads();
        var command = new Command(decode ? "decode" : "encode",
            decode ? "Decode latents (or reconstruct images) with the VAE." : "Encode images (tensors, or PNG, JPEG or WebP files) into the VAE's posterior.")
        {
            weights, config, inputs, key, output, latentScale, imageSize, sample, seed, threads,
        };
        var limitOptions = new InputLimitOptions(command, arrays: false);
        command.SetAction((p, token) => CliApp.Guard(() =>
        {
            using var compute = ComputeContext.WithThreads(p.GetValue(threads)).Use();
            var limits = limitOptions.Read(p);
            string input = p.GetValue(inputs)!, outPath = p.GetValue(output)!;
            bool images = IsImageInput(input);
            if (!images && !File.Exists(input)) throw new MediatorDiTException($"--inputs '{input}' does not exist.");
            bool pngOut = decode && !outPath.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase);
            if (!pngOut && !outPath.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
                throw new MediatorDiTException($"--out '{outPath}' must be a .safetensors file for vae encode.");
            if (pngOut) PrepareImageOutput(outPath);
            else CliApp.OutputFile(outPath);

            var vae = VaeFiles.Load(p.GetValue(weights)!, p.GetValue(config));
            Console.Error.WriteLine($"VAE: {vae.Config.Summary}");
            var pipeline = new VaePipeline(vae, decode ? (p.GetValue(latentScale) ?? 1f) : p.GetValue(latentScale));
            string[] names = [];
            Tensor x = images ? ReadImages(input, vae.Config.DownsampleFactor, p.GetValue(imageSize), limits, out names)
                : SafeTensors.Read(input).GetFloat(p.GetValue(key)!);

            if (decode)
            {
                var decoded = images ? vae.Decode(vae.Encode(x, token).Mean, token) : pipeline.DecodeLatents(x, token);
                if (pngOut) WriteImages(outPath, decoded, names);
                else SafeTensors.Write(outPath, new Dictionary<string, StoredTensor> { ["decoded"] = StoredTensor.FromFloat(decoded) });
                Console.WriteLine($"decoded {decoded.Dim(0)} image{(decoded.Dim(0) == 1 ? "" : "s")} of {decoded.Dim(2)}x{decoded.Dim(3)} -> {outPath}");
                return 0;
            }

            if (images)
            {
                var latents = pipeline.EncodeToLatents(x, p.GetValue(sample) ? new RandomSource(p.GetValue(seed)) : null, token);
                SafeTensors.Write(outPath, new Dictionary<string, StoredTensor> { [LatentDataset.LatentsKey] = StoredTensor.FromFloat(latents) },
                    new Dictionary<string, string>
                    {
                        ["latent_scale"] = pipeline.LatentScale.ToString("R", CultureInfo.InvariantCulture),
                        ["files"] = JsonSerializer.Serialize(names),
                    });
                Console.WriteLine($"encoded {latents.Dim(0)} image{(latents.Dim(0) == 1 ? "" : "s")} into latents [{latents.ShapeString}] (times {pipeline.LatentScale}) -> {outPath}");
                return 0;
            }
            var posterior = vae.Encode(x, token);
            SafeTensors.Write(outPath, new Dictionary<string, StoredTensor>
            {
                ["posterior.mean"] = StoredTensor.FromFloat(posterior.Mean),
                ["posterior.logvar"] = StoredTensor.FromFloat(posterior.LogVar),
                ["posterior.std"] = StoredTensor.FromFloat(posterior.Std),
            });
            Console.WriteLine($"wrote posterior.mean, posterior.logvar, posterior.std [{posterior.Mean.ShapeString}] to {outPath}");
            return 0;
        }, token));
        return command;
    }

    private static bool IsImageInput(string input) =>
        Directory.Exists(input) || ImageFile.HasImageExtension(input);

    /// <summary>One image or every image file directly in a folder (ordinal order) as a (B, 3, H, W) batch in [-1, 1].</summary>
    private static Tensor ReadImages(string input, int factor, int? cropSize, InputLimits limits, out string[] names)
    {
        string[] files = Directory.Exists(input)
            ? Directory.EnumerateFiles(input).Where(ImageFile.HasImageExtension).Order(StringComparer.Ordinal).ToArray()
            : File.Exists(input) ? [input] : throw new MediatorDiTException($"--inputs '{input}' does not exist.");
        if (files.Length == 0) throw new MediatorDiTException($"--inputs '{input}' holds no {ImageFile.ExtensionList} files.");
        if (cropSize is int s && (s < 1 || s % factor != 0))
            throw new MediatorDiTException($"--image-size {s} must be a positive multiple of the VAE's downsampling factor {factor}.");
        var pixels = new List<byte[]>();
        int width = 0, height = 0;
        foreach (string file in files)
        {
            var rgb = ImageFile.Read(file, limits).ToRgb();
            byte[] bytes = rgb.Pixels;
            int w = rgb.Width, h = rgb.Height;
            if (cropSize is int size)
            {
                bytes = CenterCrop.Apply(bytes, w, h, 3, size);
                w = h = size;
            }
            else if (w % factor != 0 || h % factor != 0)
                throw new MediatorDiTException($"{file}: is {w}x{h}, but the VAE needs sides that are multiples of {factor}; pass --image-size S to centre-crop.");
            if (pixels.Count > 0 && (w != width || h != height))
                throw new MediatorDiTException($"{file}: is {w}x{h} but {files[0]} is {width}x{height}; one batch needs one size (pass --image-size S to centre-crop all).");
            (width, height) = (w, h);
            pixels.Add(bytes);
        }
        names = files.Select(Path.GetFileName).ToArray()!;
        return ImageConversion.FromBytes(pixels.SelectMany(b => b).ToArray(), files.Length, height, width, 3);
    }

    private static void PrepareImageOutput(string outPath)
    {
        if (outPath.EndsWith(".png", StringComparison.OrdinalIgnoreCase)) CliApp.OutputFile(outPath);
        else OutputFolder.EnsureWritable(outPath, "output folder");
    }

    /// <summary>
    /// A single image to a .png path; otherwise one PNG per image into the folder, named as the inputs (a JPEG or
    /// WebP input's name with .png appended, so that a.jpg and a.png do not collide), or 000000.png, ...
    /// </summary>
    private static void WriteImages(string outPath, Tensor images, string[] names)
    {
        if (outPath.EndsWith(".png", StringComparison.OrdinalIgnoreCase))
        {
            if (images.Dim(0) != 1)
                throw new MediatorDiTException($"--out '{outPath}' is one PNG file but there are {images.Dim(0)} images; give a folder.");
            PngEncoder.Write(outPath, ImageConversion.ToImage(images, 0));
            return;
        }
        for (int i = 0; i < images.Dim(0); i++)
        {
            string name = names.Length != images.Dim(0) ? $"{i:D6}.png"
                : names[i].EndsWith(".png", StringComparison.OrdinalIgnoreCase) ? names[i] : names[i] + ".png";
            PngEncoder.Write(Path.Combine(outPath, name), ImageConversion.ToImage(images, i));
        }
    }
}
