using MediatorDiT.IO;
using MediatorDiT.Nn;
using MediatorDiT.Tensors;

namespace MediatorDiT.Models.Vae;

/// <summary>
/// diffusers' AutoencoderKL (the Stable Diffusion VAE): encode = quant_conv(encoder(x)) read as a diagonal
/// Gaussian; decode = decoder(post_quant_conv(z)). Images are (B, in, H, W) in [-1, 1], latents
/// (B, latent, H / f, W / f) with f = <see cref="AutoencoderKlConfig.DownsampleFactor"/>. The 0.18215
/// latent scale is not applied here (see <see cref="VaePipeline"/>).
/// Images go through one at a time on one reused <see cref="VaeWorkspace"/>, so memory does not grow
/// with the batch. Not thread-safe: one call at a time per instance.
/// </summary>
public sealed class AutoencoderKl : IParameterSet
{
    /// <summary>The validated hyper-parameters the VAE was built for.</summary>
    public AutoencoderKlConfig Config { get; }
    internal VaeEncoder Encoder { get; }
    internal VaeDecoder Decoder { get; }
    internal Conv2dLayer QuantConv { get; }
    internal Conv2dLayer PostQuantConv { get; }
    /// <summary>
    /// Every parameter (all frozen) under its diffusers state-dict key, the mid-block attention under the older
    /// names (query/key/value/proj_attn): encoder, decoder, quant_conv, post_quant_conv.
    /// </summary>
    public IReadOnlyList<Parameter> Parameters { get; }
    internal VaeWorkspace Workspace { get; } = new();

    private readonly Dictionary<string, Parameter> _byName;

    /// <summary>Builds the VAE for <paramref name="config"/> (validated first) with zero weights; <see cref="VaeFiles.Load"/> builds one from a file.</summary>
    public AutoencoderKl(AutoencoderKlConfig config)
    {
        Config = config.Validate();
        int latent = config.LatentChannels;
        Encoder = new VaeEncoder(config);
        Decoder = new VaeDecoder(config);
        QuantConv = new Conv2dLayer("quant_conv", Conv2dGeometry.Square(2 * latent, 2 * latent, 1));
        PostQuantConv = new Conv2dLayer("post_quant_conv", Conv2dGeometry.Square(latent, latent, 1));
        Parameters = [.. Encoder.Parameters, .. Decoder.Parameters, .. QuantConv.Parameters, .. PostQuantConv.Parameters];
        _byName = Parameters.ToDictionary(p => p.Name, StringComparer.Ordinal);
    }

    /// <summary>The parameter a state-dict key names under either naming scheme, or null.</summary>
    public Parameter? FindParameter(string key) =>
        _byName.TryGetValue(VaeKeyNames.ToOlder(key), out var p) ? p : null;

    /// <summary>
    /// Loads every parameter from <paramref name="state"/> (keys under either naming scheme; F16/BF16/F64
    /// converted). Strict: a key with the wrong shape, a missing parameter, an unknown key, or one
    /// parameter named twice is a <see cref="MediatorDiTException"/> and nothing is loaded.
    /// Attention weights stored as 1x1 convolutions (C, C, 1, 1) are accepted as (C, C).
    /// </summary>
    public void LoadStateDict(IReadOnlyDictionary<string, StoredTensor> state, string source)
    {
        var assigned = new Dictionary<Parameter, string>();
        var unexpected = new List<string>();
        foreach (var (key, stored) in state)
        {
            var parameter = FindParameter(key);
            if (parameter is null)
            {
                unexpected.Add(key);
                continue;
            }
            if (!ShapeFits(parameter.Value.Shape, stored.Shape))
                throw new MediatorDiTException(
                    $"{source}: key '{key}' has shape [{StoredTensor.FormatShape(stored.Shape)}] but the VAE config ({Config.Summary}) expects [{parameter.Value.ShapeString}].");
            if (!assigned.TryAdd(parameter, key))
                throw new MediatorDiTException(
                    $"{source}: keys '{assigned[parameter]}' and '{key}' both name the VAE parameter '{parameter.Name}'; expected one naming scheme.");
        }
        var missing = Parameters.Where(p => !assigned.ContainsKey(p)).ToList();
        if (missing.Count > 0)
            throw new MediatorDiTException(
                $"{source}: the VAE parameter '{missing[0].Name}' [{missing[0].Value.ShapeString}] is missing ({missing.Count} missing in all; config {Config.Summary}).");
        if (unexpected.Count > 0)
            throw new MediatorDiTException(
                $"{source}: key '{unexpected[0]}' [{state[unexpected[0]].ShapeString}] is not a parameter of the VAE ({unexpected.Count} unknown keys in all); expected diffusers AutoencoderKL names.");
        foreach (var (parameter, key) in assigned) state[key].CopyTo(parameter.Value.Span);
    }

    private static bool ShapeFits(int[] expected, int[] found) =>
        expected.AsSpan().SequenceEqual(found) ||
        (expected.Length == 2 && found.Length == 4 && found[0] == expected[0] && found[1] == expected[1] && found[2] == 1 && found[3] == 1);

    /// <summary>images (B, in, H, W), H and W multiples of the downsampling factor -> the posterior (B, latent, H/f, W/f).</summary>
    public DiagonalGaussian Encode(Tensor images, CancellationToken cancellationToken = default)
    {
        var (batch, height, width) = CheckInput(images, Config.InChannels, "images", Config.DownsampleFactor);
        CheckSize(height, width, "images");
        int f = Config.DownsampleFactor, latent = Config.LatentChannels, h = height / f, w = width / f;
        var mean = new Tensor(batch, latent, h, w);
        var logVar = new Tensor(batch, latent, h, w);
        var std = new Tensor(batch, latent, h, w);
        int inPer = Config.InChannels * height * width, outPer = latent * h * w;
        var ws = Workspace;
        for (int b = 0; b < batch; b++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            ws.Current.EnsureShape(Config.InChannels, height, width);
            images.Span.Slice(b * inPer, inPer).CopyTo(ws.Current.Span);
            var (eh, ew) = Encoder.Forward(ws, height, width, cancellationToken);
            QuantConv.Forward(ws.Current, eh, ew, ws.Next, ws.Conv);
            DiagonalGaussian.FromMoments(ws.Next.Span, mean.Span, logVar.Span, std.Span, b * outPer, outPer);
        }
        return new DiagonalGaussian(mean, logVar, std);
    }

    /// <summary>latents (B, latent, h, w) -> images (B, out, h*f, w*f), not clamped.</summary>
    public Tensor Decode(Tensor latents, CancellationToken cancellationToken = default)
    {
        var (batch, h, w) = CheckInput(latents, Config.LatentChannels, "latents", 1);
        CheckSize((long)h * Config.DownsampleFactor, (long)w * Config.DownsampleFactor, "latents");
        int f = Config.DownsampleFactor, outC = Config.OutChannels;
        var images = new Tensor(batch, outC, h * f, w * f);
        int inPer = Config.LatentChannels * h * w, outPer = outC * h * f * w * f;
        var ws = Workspace;
        for (int b = 0; b < batch; b++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            ws.Next.EnsureShape(Config.LatentChannels, h, w);
            latents.Span.Slice(b * inPer, inPer).CopyTo(ws.Next.Span);
            PostQuantConv.Forward(ws.Next, h, w, ws.Current, ws.Conv);
            Decoder.Forward(ws, h, w, cancellationToken);
            ws.Current.Span[..outPer].CopyTo(images.Span.Slice(b * outPer, outPer));
        }
        return images;
    }

    internal static (int Batch, int Height, int Width) CheckInput(Tensor x, int channels, string what, int multiple)
    {
        if (x.Rank != 4 || x.Dim(1) != channels || x.Dim(2) <= 0 || x.Dim(3) <= 0 || x.Dim(2) % multiple != 0 || x.Dim(3) % multiple != 0)
            throw new MediatorDiTException(
                $"VAE {what} have shape [{x.ShapeString}] but [B, {channels}, H, W] with H and W positive multiples of {multiple} was expected.");
        return (x.Dim(0), x.Dim(2), x.Dim(3));
    }

    /// <summary>
    /// Refuses images (of H x W pixels) whose activations would not fit one array: a level's feature map
    /// (channels x H/2^i x W/2^i) or the mid-block attention's scores, (H/f x W/f)^2, which grow with the
    /// fourth power of the side.
    /// </summary>
    internal void CheckSize(long height, long width, string what)
    {
        int f = Config.DownsampleFactor;
        long positions = height / f * (width / f);
        if (positions * positions > Array.MaxLength)
            throw new MediatorDiTException(
                $"VAE {what} of {height}x{width} pixels are too large: the mid-block attention over the {height / f}x{width / f} latent would need {positions * positions} scores, more than one array holds; use smaller images.");
        int[] channels = Config.BlockOutChannels;
        for (int i = 0; i < channels.Length; i++)
        {
            long c = channels[Math.Max(i - 1, 0)..Math.Min(i + 2, channels.Length)].Max();
            long values = c * (height >> i) * (width >> i);
            if (values > Array.MaxLength)
                throw new MediatorDiTException(
                    $"VAE {what} of {height}x{width} pixels are too large: the {c}-channel feature map at 1/{1 << i} scale would hold {values} values, more than one array holds; use smaller images.");
        }
    }

    /// <summary>Multiply-accumulates of decoding one latent of size h x w: convolutions, plus attention when asked.</summary>
    public long DecodeMultiplyAccumulates(int height, int width, bool includeAttention = true) =>
        PostQuantConv.MultiplyAccumulates(height, width) + Decoder.MultiplyAccumulates(height, width, includeAttention);

    /// <summary>Multiply-accumulates of encoding one image of size H x W: convolutions, plus attention when asked.</summary>
    public long EncodeMultiplyAccumulates(int height, int width, bool includeAttention = true) =>
        Encoder.MultiplyAccumulates(height, width, includeAttention) +
        QuantConv.MultiplyAccumulates(height / Config.DownsampleFactor, width / Config.DownsampleFactor);
}
