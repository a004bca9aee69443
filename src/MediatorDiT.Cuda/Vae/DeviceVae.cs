using ILGPU;
using ILGPU.Runtime;
using MediatorDiT.Cuda.Blas;
using MediatorDiT.Cuda.Kernels;
using MediatorDiT.Models.Vae;
using MediatorDiT.Nn;
using MediatorDiT.Tensors;

namespace MediatorDiT.Cuda.Vae;

/// <summary>
/// The Stable Diffusion VAE (<see cref="AutoencoderKl"/>) on an ILGPU accelerator, the device twin of its
/// <see cref="AutoencoderKl.Decode"/> and <see cref="AutoencoderKl.Encode"/>: the weights are uploaded once, each image
/// runs through the same blocks in the same order (resnets, the mid-block's single-head attention, nearest 2x
/// upsampling, the asymmetric-padded stride-2 downsampling), and the activations live in device buffers that grow to
/// the largest size seen and are kept. Convolutions are im2col then the device GEMM (cuBLAS on a GPU; a 1x1 stride-1
/// convolution reads its input as the column matrix), or with <see cref="DirectConvolutions"/> the plain direct kernel;
/// GroupNorm, SiLU and upsampling are <see cref="VaeKernels"/>, the residual sums and the attention's row softmax the
/// network's kernels. Everything computes in fp32. Not thread-safe: one call at a time. Dispose it to free the device memory.
/// </summary>
public sealed class DeviceVae : IVaeDevice, IDisposable
{
    private readonly AutoencoderKl _vae;
    private readonly VaeKernelSet _k;
    private readonly KernelSet _kernels;
    private readonly IDeviceGemm _gemm;
    private readonly Dictionary<Parameter, MemoryBuffer1D<float, Stride1D.Dense>> _weights = new(ReferenceEqualityComparer.Instance);
    private readonly Grown _cols, _q, _key, _v, _out, _scores, _lse, _stats;
    private Grown _current, _next, _t1, _t2;

    /// <summary>Uploads <paramref name="vae"/>'s weights to <paramref name="accelerator"/> (which stays the caller's).</summary>
    /// <param name="vae">The loaded autoencoder (its parameters are read once, here).</param>
    /// <param name="accelerator">Where it runs.</param>
    /// <param name="deviceName">Where that is, in words; null: the accelerator's name.</param>
    public DeviceVae(AutoencoderKl vae, Accelerator accelerator, string? deviceName = null)
        : this(vae, new KernelSet(accelerator), DeviceGemms.For(accelerator), deviceName)
    {
    }

    /// <summary>As the public constructor, with the network kernels given (shared) and the GEMM (owned).</summary>
    internal DeviceVae(AutoencoderKl vae, KernelSet kernels, IDeviceGemm gemm, string? deviceName)
    {
        ArgumentNullException.ThrowIfNull(vae);
        _vae = vae;
        _kernels = kernels;
        _gemm = gemm;
        var accelerator = kernels.Accelerator;
        _k = new VaeKernelSet(accelerator);
        DeviceName = deviceName ?? accelerator.Name;
        foreach (var p in vae.Parameters) _weights[p] = accelerator.Allocate1D(p.Value.Span.ToArray());
        (_current, _next, _t1, _t2) = (new(accelerator), new(accelerator), new(accelerator), new(accelerator));
        (_cols, _q, _key, _v, _out, _scores, _lse, _stats) =
            (new(accelerator), new(accelerator), new(accelerator), new(accelerator), new(accelerator), new(accelerator), new(accelerator), new(accelerator));
    }

    /// <inheritdoc/>
    public string DeviceName { get; }

    /// <summary>Run every convolution with the direct kernel instead of im2col + GEMM (the reference path; slower on a GPU).</summary>
    public bool DirectConvolutions { get; init; }

    /// <inheritdoc/>
    public Tensor Decode(Tensor latents, CancellationToken cancellationToken = default)
    {
        var config = _vae.Config;
        var (batch, h, w) = AutoencoderKl.CheckInput(latents, config.LatentChannels, "latents", 1);
        _vae.CheckSize((long)h * config.DownsampleFactor, (long)w * config.DownsampleFactor, "latents");
        _kernels.Accelerator.Bind();
        int inPer = config.LatentChannels * h * w;
        Tensor? images = null;
        for (int b = 0; b < batch; b++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            _next.Write(inPer).CopyFromCPU(latents.Span.Slice(b * inPer, inPer));
            Conv(_vae.PostQuantConv, _next.Read(inPer), h, w, _current);
            var (channels, height, width) = DecoderForward(_vae.Decoder, h, w, cancellationToken);
            int outPer = channels * height * width;
            images ??= new Tensor(batch, channels, height, width);
            _kernels.Synchronize();
            _current.Read(outPer).CopyToCPU(images.Span.Slice(b * outPer, outPer));
        }
        return images!;
    }

    /// <inheritdoc/>
    public DiagonalGaussian Encode(Tensor images, CancellationToken cancellationToken = default)
    {
        var config = _vae.Config;
        var (batch, height, width) = AutoencoderKl.CheckInput(images, config.InChannels, "images", config.DownsampleFactor);
        _vae.CheckSize(height, width, "images");
        _kernels.Accelerator.Bind();
        int f = config.DownsampleFactor, latent = config.LatentChannels, h = height / f, w = width / f;
        var mean = new Tensor(batch, latent, h, w);
        var logVar = new Tensor(batch, latent, h, w);
        var std = new Tensor(batch, latent, h, w);
        int inPer = config.InChannels * height * width, outPer = latent * h * w;
        var moments = new float[2 * outPer];
        for (int b = 0; b < batch; b++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            _current.Write(inPer).CopyFromCPU(images.Span.Slice(b * inPer, inPer));
            var (channels, eh, ew) = EncoderForward(_vae.Encoder, height, width, cancellationToken);
            Conv(_vae.QuantConv, _current.Read((long)channels * eh * ew), eh, ew, _next);
            _kernels.Synchronize();
            _next.Read(moments.Length).CopyToCPU(moments);
            DiagonalGaussian.FromMoments(moments, mean.Span, logVar.Span, std.Span, b * outPer, outPer);
        }
        return new DiagonalGaussian(mean, logVar, std);
    }

    /// <summary>_current (latent, h, w) -> _current (out, h f, w f), as VaeDecoder.Forward.</summary>
    private (int Channels, int Height, int Width) DecoderForward(VaeDecoder d, int height, int width, CancellationToken cancellationToken)
    {
        int c = Conv(d.ConvIn, _current.Read((long)d.ConvIn.Geometry.InChannels * height * width), height, width, _next);
        Swap();
        MidBlock(d.MidBlock, c, height, width);
        for (int b = 0; b < d.UpResnets.Count; b++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            foreach (var resnet in d.UpResnets[b])
            {
                c = Resnet(resnet, height, width);
                Swap();
            }
            if (d.Upsamplers[b] is { } up)
            {
                var upsampled = _t1.Write(4L * c * height * width);
                _k.NearestUpsample2x(_current.Read((long)c * height * width), upsampled, c, height, width);
                (height, width) = (2 * height, 2 * width);
                c = Conv(up.Conv, upsampled, height, width, _next);
                Swap();
            }
        }
        cancellationToken.ThrowIfCancellationRequested();
        var x = _current.Read((long)c * height * width);
        Norm(d.NormOut, x, x, height * width, silu: true);
        c = Conv(d.ConvOut, x, height, width, _next);
        Swap();
        return (c, height, width);
    }

    /// <summary>_current (in, H, W) -> _current (2 latent, H / f, W / f), as VaeEncoder.Forward.</summary>
    private (int Channels, int Height, int Width) EncoderForward(VaeEncoder e, int height, int width, CancellationToken cancellationToken)
    {
        int c = Conv(e.ConvIn, _current.Read((long)e.ConvIn.Geometry.InChannels * height * width), height, width, _next);
        Swap();
        for (int b = 0; b < e.DownResnets.Count; b++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            foreach (var resnet in e.DownResnets[b])
            {
                c = Resnet(resnet, height, width);
                Swap();
            }
            if (e.Downsamplers[b] is { } down)
            {
                c = Conv(down.Conv, _current.Read((long)c * height * width), height, width, _next);
                Swap();
                (height, width) = (down.OutputSize(height), down.OutputSize(width));
            }
        }
        cancellationToken.ThrowIfCancellationRequested();
        MidBlock(e.MidBlock, c, height, width);
        var x = _current.Read((long)c * height * width);
        Norm(e.NormOut, x, x, height * width, silu: true);
        c = Conv(e.ConvOut, x, height, width, _next);
        Swap();
        return (c, height, width);
    }

    /// <summary>Resnet, attention, resnet at one width; _current -> _current.</summary>
    private void MidBlock(VaeMidBlock m, int channels, int height, int width)
    {
        Resnet(m.Resnet0, height, width);
        Swap();
        Attention(m.Attention, channels, height, width);
        Swap();
        Resnet(m.Resnet1, height, width);
        Swap();
    }

    /// <summary>_current (in, H, W) -> _next (out, H, W): conv2(silu(norm2(conv1(silu(norm1(x)))))) + shortcut(x), as ResnetBlock2D.</summary>
    private int Resnet(ResnetBlock2D r, int height, int width)
    {
        int n = height * width;
        var x = _current.Read((long)r.InChannels * n);
        var t1 = _t1.Write((long)r.InChannels * n);
        Norm(r.Norm1, x, t1, n, silu: true);
        Conv(r.Conv1, t1, height, width, _t2);
        var t2 = _t2.Read((long)r.OutChannels * n);
        var t1b = _t1.Write((long)r.OutChannels * n);
        Norm(r.Norm2, t2, t1b, n, silu: true);
        Conv(r.Conv2, t1b, height, width, _next);
        var y = _next.Read((long)r.OutChannels * n);
        if (r.ConvShortcut is { } shortcut)
        {
            Conv(shortcut, x, height, width, _t2);
            _kernels.AddInto(y, _t2.Read(y.Length));
        }
        else
        {
            _kernels.AddInto(y, x);
        }
        return r.OutChannels;
    }

    /// <summary>
    /// _current (C, H, W) -> _next: n = GroupNorm(x) as HW positions of C features; q, k, v (HW, C) = n^T W^T + b;
    /// p = softmax(q k^T / sqrt(C)) (HW, HW); y = x + b_proj + W_proj (p v)^T, as VaeAttention.
    /// </summary>
    private void Attention(VaeAttention a, int c, int height, int width)
    {
        int n = height * width;
        var x = _current.Read((long)c * n);
        var normed = _t1.Write((long)c * n);
        Norm(a.GroupNorm, x, normed, n, silu: false);
        var q = Project(normed, a.QueryWeight, a.QueryBias, _q, n, c);
        var k = Project(normed, a.KeyWeight, a.KeyBias, _key, n, c);
        var v = Project(normed, a.ValueWeight, a.ValueBias, _v, n, c);
        var scores = _scores.Write((long)n * n);
        _gemm.Sgemm(GemmShape.Single(false, true, n, n, c, 1f / MathF.Sqrt(c), c, c, 0f, n), q, k, scores);
        _kernels.SoftmaxForward(scores, scores, _lse.Write(n), n, hasBias: false);
        var output = _out.Write((long)n * c);
        _gemm.Sgemm(GemmShape.Single(false, false, n, c, n, 1f, n, c, 0f, c), scores, v, output);
        var y = _next.Write((long)c * n);
        _k.AddChannelBias(x, Weight(a.ProjBias), y, n);
        _gemm.Sgemm(GemmShape.Single(false, true, c, n, c, 1f, c, c, 1f, n), Weight(a.ProjWeight), output, y);
    }

    /// <summary>dst (n, C) = src^T W^T + b with src (C, n) channel-major, as VaeAttention's projections.</summary>
    private ArrayView<float> Project(ArrayView<float> src, Parameter weight, Parameter bias, Grown dst, int n, int c)
    {
        var d = dst.Write((long)n * c);
        _kernels.RepeatRow(Weight(bias), d, c);
        _gemm.Sgemm(GemmShape.Single(true, true, n, c, c, 1f, n, c, 1f, c), src, Weight(weight), d);
        return d;
    }

    /// <summary>y (out, OH, OW) in <paramref name="output"/> = the layer over x (in, H, W); returns out.</summary>
    private int Conv(Conv2dLayer layer, ArrayView<float> x, int height, int width, Grown output)
    {
        var s = ConvShape.Of(layer.Geometry, height, width);
        var y = output.Write((long)s.OutChannels * s.Positions);
        var (weight, bias) = (Weight(layer.Weight), Weight(layer.Bias));
        if (DirectConvolutions)
        {
            _k.ConvDirect(x, weight, bias, y, s);
            return s.OutChannels;
        }
        // y (out, OH OW) = W (out, in kh kw) cols (in kh kw, OH OW) + bias; a 1x1 stride-1 convolution's cols are x itself.
        var cols = x;
        if (!layer.Geometry.IsPointwise)
        {
            cols = _cols.Write((long)s.PatchSize * s.Positions);
            _k.Im2Col(x, cols, s);
        }
        _k.ChannelRows(bias, y, s.Positions);
        _gemm.Sgemm(GemmShape.Single(false, false, s.OutChannels, s.Positions, s.PatchSize, 1f, s.PatchSize, s.Positions, 1f, s.Positions), weight, cols, y);
        return s.OutChannels;
    }

    private void Norm(GroupNormLayer norm, ArrayView<float> x, ArrayView<float> y, int spatial, bool silu) =>
        _k.GroupNorm(x, Weight(norm.Weight), Weight(norm.Bias), y, _stats.Write(2L * norm.Groups), norm.Channels, spatial, norm.Groups, norm.Eps, silu);

    private ArrayView<float> Weight(Parameter p) => _weights[p].View;

    /// <summary>Makes the block output (_next) the input of the following block.</summary>
    private void Swap() => (_current, _next) = (_next, _current);

    /// <summary>Frees the weights and activations on the device.</summary>
    public void Dispose()
    {
        foreach (var buffer in _weights.Values) buffer.Dispose();
        _weights.Clear();
        foreach (var g in new[] { _current, _next, _t1, _t2, _cols, _q, _key, _v, _out, _scores, _lse, _stats }) g.Dispose();
        _gemm.Dispose();
    }

    /// <summary>
    /// A device buffer that grows to the largest length asked for and is kept. <see cref="Write"/> may reallocate
    /// (the contents are then lost: only for a buffer about to be overwritten); <see cref="Read"/> never does.
    /// </summary>
    private sealed class Grown(Accelerator accelerator) : IDisposable
    {
        private MemoryBuffer1D<float, Stride1D.Dense>? _buffer;

        public ArrayView<float> Write(long length)
        {
            if (_buffer is null || _buffer.Length < length)
            {
                if (_buffer is not null)
                {
                    accelerator.Synchronize(); // queued launches may still read the old buffer
                    _buffer.Dispose();
                }
                _buffer = accelerator.Allocate1D<float>(Math.Max(1, length));
            }
            return _buffer.View.SubView(0, length);
        }

        public ArrayView<float> Read(long length)
        {
            if (_buffer is null || _buffer.Length < length) throw new InvalidOperationException($"the VAE buffer holds fewer than {length} values.");
            return _buffer.View.SubView(0, length);
        }

        public void Dispose() => _buffer?.Dispose();
    }
}
