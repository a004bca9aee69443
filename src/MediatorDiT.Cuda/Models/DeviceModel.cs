using ILGPU;
using ILGPU.Runtime;
using MediatorDiT.Cuda.Blas;
using MediatorDiT.Cuda.Kernels;
using MediatorDiT.Models;
using MediatorDiT.Tensors;

namespace MediatorDiT.Cuda.Models;

/// <summary>
/// <see cref="SiTModel.Forward"/> and <see cref="SiTModel.ForwardWithCfg"/> on an ILGPU accelerator: the weights are
/// uploaded once (<see cref="DeviceWeights"/>), the activations allocated once per batch size (<see cref="DeviceActivations"/>),
/// and each call uploads x, t, y, runs the network's kernels and matrix products on the accelerator's default stream
/// and downloads the prediction. Every device buffer holds its tensor in the CPU backend's row-major layout. The
/// linear layers' matrix products run at the precision of the <see cref="LinearProducts"/> given (fp32, or bf16
/// inputs with fp32 accumulation); every other kernel computes in fp32.
/// For training the weights and gradients are views into a training state's buffers, every block keeps its own
/// activations, and <see cref="Backward"/> (DeviceModel.Backward.cs) accumulates the gradients.
/// Not thread-safe: one forward at a time.
/// </summary>
internal sealed partial class DeviceModel : IDisposable
{
    private readonly KernelSet _kernels;
    private readonly LinearProducts _products;
    private readonly DeviceWeights _weights;
    private readonly DeviceWeights? _gradients;
    private DeviceActivations? _activations;

    /// <summary>A model for sampling: uploads the weights (and, in bf16, gives <paramref name="products"/> their copies to keep).</summary>
    public DeviceModel(SiTModel model, KernelSet kernels, LinearProducts products)
    {
        Config = model.Config;
        _kernels = kernels;
        _products = products;
        _weights = new DeviceWeights(model, kernels.Accelerator);
        products.KeepBf16Copies(_weights.Matrices);
    }

    /// <summary>
    /// A model for training: <paramref name="weights"/> and <paramref name="gradients"/> are views of a training
    /// state (this model disposes them; they own only the position-bias tables); <paramref name="products"/> keeps the
    /// bf16 copies of the state's values in bf16.
    /// </summary>
    public DeviceModel(SiTModel model, KernelSet kernels, LinearProducts products, DeviceWeights weights, DeviceWeights gradients)
    {
        Config = model.Config;
        _kernels = kernels;
        _products = products;
        _weights = weights;
        _gradients = gradients;
    }

    /// <summary>The weights the forward reads (training refreshes their position biases).</summary>
    internal DeviceWeights Weights => _weights;

    public ModelConfig Config { get; }

    /// <summary>
    /// For analysis: when set, every forward downloads each block's attention input H1 (B*N, D) and hands it with the
    /// layer and the batch size B, before the block's attention runs (a synchronisation per block; none when unset).
    /// </summary>
    internal Action<int, Tensor, int>? AttentionInputObserver { get; set; }

    private Tensor? _observedInput;
    // The host's timestep features (B, 256), reused while the batch does not grow.
    private float[] _hostFrequencies = [];

    /// <summary>The activations of the last forward (tests read the saved attention tensors), null before the first.</summary>
    internal DeviceActivations? Activations => _activations;

    /// <summary>x (B, C, H, W), t (B), y (B) -> (B, ReturnedChannels, H, W), as <see cref="SiTModel.Forward"/>.</summary>
    public Tensor Forward(Tensor x, ReadOnlySpan<float> t, ReadOnlySpan<int> y) => Run(x.Span, x, t, y, guidance: null);

    /// <summary>forward_with_cfg as <see cref="SiTModel.ForwardWithCfg"/>: the first half's states under both halves' labels, guided on the device.</summary>
    public Tensor ForwardWithCfg(Tensor x, ReadOnlySpan<float> t, ReadOnlySpan<int> y, float cfgScale, int? guidedChannels)
    {
        int b = x.Dim(0);
        if (b % 2 != 0) throw new MediatorDiTException($"classifier-free guidance needs an even batch (conditional + unconditional halves), got {b}.");
        int per = x.Length / b, half = b / 2;
        var combined = new float[x.Length];
        x.Span[..(half * per)].CopyTo(combined);
        x.Span[..(half * per)].CopyTo(combined.AsSpan(half * per));
        return Run(combined, x, t, y, (cfgScale, guidedChannels));
    }

    private Tensor Run(ReadOnlySpan<float> states, Tensor x, ReadOnlySpan<float> t, ReadOnlySpan<int> y, (float Scale, int? Channels)? guidance)
    {
        var cfg = Config;
        int b = SiTModel.CheckInputs(cfg, x, t.Length, y.Length);
        foreach (int label in y)
            if ((uint)label >= (uint)_weights.LabelRows)
                throw new MediatorDiTException(
                    $"class label {label} is out of range: the model has {cfg.NumClasses} classes (0..{cfg.NumClasses - 1}, {cfg.NumClasses} = null label).");

        // The caller's thread may not be the one that opened the device (mdit serve runs jobs on a worker thread):
        // make its context current there, so the launches and cuBLAS calls below find it.
        _kernels.Accelerator.Bind();
        var a = ActivationsFor(b);
        a.Input.CopyFromCPU(states);
        UploadTimes(a, t);
        a.Labels.CopyFromCPU(y);
        Network(a, b);

        int keep = cfg.ReturnedChannels, size = cfg.InputSize, plane = size * size;
        if (guidance is var (scale, channels))
            _kernels.Guidance(a.Output, b / 2, keep * plane, Math.Min(channels ?? keep, keep) * plane, scale);
        var output = new Tensor(b, keep, size, size);
        _kernels.Synchronize();
        a.Output.CopyToCPU(output.Span);
        return output;
    }

    /// <summary>
    /// Uploads the sinusoidal features (B, 256) of the times t (B), computed on the host by the CPU model's own
    /// <see cref="TimestepEmbedder.Frequencies"/>: a GPU's fast sine, cosine and exponential are approximations, and
    /// DiT's times reach 999, where an error of one unit in the last place of t freq already moves sin(t freq) by 1e-4.
    /// </summary>
    internal void UploadTimes(DeviceActivations a, ReadOnlySpan<float> t)
    {
        int size = t.Length * TimestepEmbedder.FrequencySize;
        if (_hostFrequencies.Length < size) _hostFrequencies = new float[size];
        TimestepEmbedder.Frequencies(t, _hostFrequencies.AsSpan(0, size));
        a.Frequencies.SubView(0, size).CopyFromCPU(_hostFrequencies.AsSpan(0, size));
    }

    /// <summary>The activations for a batch of <paramref name="batch"/>, allocated at the first call of that size (per block when training).</summary>
    internal DeviceActivations ActivationsFor(int batch)
    {
        if (_activations?.Batch != batch)
        {
            _activations?.Dispose();
            _activations = new DeviceActivations(Config, batch, _kernels.Accelerator, perBlock: _gradients is not null,
                bf16Operands: _products.OperandsFromProducers, bf16Products: _products.Precision == DevicePrecision.Bf16,
                keepsProbabilities: _products.Attention.KeepsProbabilitiesFor(Config));
        }
        return _activations;
    }

    /// <summary>The network's kernels over the uploaded input, times and labels, in SiTModel.Forward's order.</summary>
    private void Network(DeviceActivations a, int b)
    {
        var cfg = Config;
        var k = _kernels;
        int d = cfg.HiddenSize, n = cfg.NumTokens, rows = b * n, p = cfg.PatchSize, patchWidth = cfg.InChannels * p * p;
        int outWidth = p * p * cfg.OutChannels;
        var w = _weights;

        // Embeddings: tokens = patches W^T + b + pos; c = y_emb + t_emb; siluC = SiLU(c).
        using (k.Stage("forward: embeddings"))
        {
            k.Patchify(a.Input, a.Patches, new PatchGeometry(cfg.InChannels, p, cfg.GridSize, cfg.InChannels), b);
            Linear(a.Patches, w.PatchWeight, w.PatchBias, a.X, rows, patchWidth, d);
            k.AddRepeated(a.X, w.PosEmbed, n * d);
            Linear(a.Frequencies, w.TimeW0, w.TimeB0, a.TimeHidden, b, TimestepEmbedder.FrequencySize, d);
            k.SiluForward(a.TimeHidden, a.TimeActivated);
            Linear(a.TimeActivated, w.TimeW2, w.TimeB2, a.TimeEmbedding, b, d, d);
            k.LabelEmbed(w.LabelTable, a.Labels, a.TimeEmbedding, a.Condition, d);
            k.SiluForward(a.Condition, a.SiluCondition);
        }

        var geometry = Geometry(b);
        // A training forward writes what the backward reads (attention's maps and fp32 output); a sampling forward,
        // where the bf16 products read their operands' copies, leaves those out.
        bool forBackward = _gradients is not null;
        int depth = w.Blocks.Count;
        // Each block's first LayerNorm runs with the gated residual before it (the previous block's MLP branch; the
        // final layer's LayerNorm with the last block's), the second with the attention branch's: one pass over the
        // residual stream each. So block i + 1's modulation is made before block i's last gated residual.
        Modulation(a, 0, b);
        using (k.Stage("forward: norms and gated residuals"))
            AdaLayerNorm(a.Stream(0), a.Chunk(0, 0), a.Chunk(0, 1), a.Block(0).QkvInput, a.Block(0).Stats1, d, n,
                keepFloats: AttentionInputObserver is not null);
        for (int i = 0; i < depth; i++)
        {
            var block = w.Blocks[i];
            var s = a.Block(i);
            AttentionInputObserver?.Invoke(i, Observed(s.H1, rows, d), b);
            // + qkv's bias in the attention core, as it reads q, k and v (the head-major moves, the pooling, the depthwise conv).
            using (k.Stage("forward: qkv")) _products.Forward(s.QkvInput, block.QkvWeight, s.Qkv, rows, d, 3 * d, accumulate: false);
            // Where the blocks keep bf16 operands (written by their producers), the core's last step (the move back to
            // rows, with the depthwise conv's add in mediator attention) writes proj's too.
            var heads16 = s.ProjInput.B16;
            if (block.Mediator)
                using (k.Stage("forward: mediator attention core"))
                    _products.Attention.MediatorForward(s.Qkv, block.QkvBias, block.Bias1, block.Bias2, block.DwcWeight, block.DwcBias, s.MediatorTokens, s.A1,
                        s.Vm, s.A2, s.Heads, geometry, heads16, forBackward);
            else
                using (k.Stage("forward: full attention core"))
                    _products.Attention.FullForward(s.Qkv, block.QkvBias, s.Heads, s.Lse, geometry, s.QkvHeadsBf16, heads16, s.Probabilities16, forBackward);
            using (k.Stage("forward: proj"))
                _products.Forward(s.ProjInput, block.ProjWeight, s.AttentionOut, rows, d, d, accumulate: false); // + bias in the gated residual
            using (k.Stage("forward: norms and gated residuals"))
                GatedAdaLayerNorm(new GatedResidualViews(a.Stream(i), s.AttentionOut, block.ProjBias, a.Chunk(i, 2), s.XMid),
                    a.Chunk(i, 3), a.Chunk(i, 4), s.Fc1Input, s.Stats2, d, n, keepFloats: false);
            // fc1's, fc2's and proj's biases are added by the kernels that read their products (GELU, the gated residuals).
            // In bf16 fc1's product stores its output in bf16 (as PyTorch's bf16 products do), which GELU reads.
            bool bf16 = _products.Precision == DevicePrecision.Bf16;
            using (k.Stage("forward: fc1"))
            {
                if (bf16) _products.ForwardToBf16(s.Fc1Input, block.Fc1Weight, s.Fc1Bf16, rows, d, cfg.MlpHidden);
                else _products.Forward(s.Fc1Input, block.Fc1Weight, s.Fc1, rows, d, cfg.MlpHidden, accumulate: false);
            }
            using (k.Stage("forward: gelu"))
            {
                if (s.Fc2Input.HasBf16) k.GeluForwardBf16(s.Fc1Bf16, block.Fc1Bias, s.GeluBf16);
                else if (bf16) k.GeluForward(s.Fc1Bf16, block.Fc1Bias, s.Gelu);
                else k.GeluForward(s.Fc1, block.Fc1Bias, s.Gelu);
            }
            using (k.Stage("forward: fc2")) _products.Forward(s.Fc2Input, block.Fc2Weight, s.Mlp, rows, cfg.MlpHidden, d, accumulate: false);
            if (i + 1 == depth) break;
            Modulation(a, i + 1, b);
            var next = a.Block(i + 1);
            using (k.Stage("forward: norms and gated residuals"))
                GatedAdaLayerNorm(new GatedResidualViews(s.XMid, s.Mlp, block.Fc2Bias, a.Chunk(i, 5), a.Stream(i + 1)),
                    a.Chunk(i + 1, 0), a.Chunk(i + 1, 1), next.QkvInput, next.Stats1, d, n, keepFloats: AttentionInputObserver is not null);
        }

        // Final layer: shift, scale = Linear(siluC) (B, 2D); tokens = Linear(adaLN(x)), x the last block's gated
        // residual (made in the same kernel); unpatchify the returned channels.
        using (k.Stage("forward: final layer"))
        {
            var last = a.Block(depth - 1);
            Linear(a.SiluCondition, w.FinalAdaWeight, w.FinalAdaBias, a.FinalModulation, b, d, 2 * d);
            k.SplitModulation(a.FinalModulation, a.ChunksOf(depth).SubView(0, 2L * b * d), b, d, 2);
            k.GatedResidualAdaLayerNorm(new GatedResidualViews(last.XMid, last.Mlp, w.Blocks[depth - 1].Fc2Bias, a.Chunk(depth - 1, 5), a.Stream(depth)),
                a.Chunk(depth, 0), a.Chunk(depth, 1), a.Normalized, a.H, a.Stats, d, n);
            Linear(a.H, w.FinalLinearWeight, w.FinalLinearBias, a.TokensOut, rows, d, outWidth);
            k.Unpatchify(a.TokensOut, a.Output, new PatchGeometry(cfg.OutChannels, p, cfg.GridSize, cfg.ReturnedChannels), b);
        }
    }

    /// <summary>Block <paramref name="block"/>'s adaLN modulation (B, 6D) = Linear(siluC), split into its set of chunks: shift1, scale1, gate1, shift2, scale2, gate2.</summary>
    private void Modulation(DeviceActivations a, int block, int b)
    {
        int d = Config.HiddenSize;
        var s = a.Block(block);
        var weights = _weights.Blocks[block];
        using (_kernels.Stage("forward: adaLN modulation"))
        {
            Linear(a.SiluCondition, weights.AdaWeight, weights.AdaBias, s.Modulation, b, d, 6 * d);
            _kernels.SplitModulation(s.Modulation, a.ChunksOf(block), b, d, 6);
        }
    }

    /// <summary>The attention input (rows, d) on the host, in one host tensor reused while the batch size stays.</summary>
    private Tensor Observed(ArrayView<float> input, int rows, int d)
    {
        if (_observedInput is null || _observedInput.Dim(0) != rows || _observedInput.Dim(1) != d) _observedInput = new Tensor(rows, d);
        _kernels.Synchronize();
        input.SubView(0, (long)rows * d).CopyToCPU(_observedInput.Span);
        return _observedInput;
    }

    /// <summary>
    /// A block's adaLN LayerNorm of x into stats and h; when h has a bf16 copy the kernel writes it, and the fp32 h too
    /// only when <paramref name="keepFloats"/> (an observer reads it). No xhat: the backward makes it again from x (the
    /// block's input or xMid, both kept when training) and the stats.
    /// </summary>
    private void AdaLayerNorm(ArrayView<float> x, ArrayView<float> shift, ArrayView<float> scale, ProductOperand h, ArrayView<float> stats, int d,
        int rowsPerImage, bool keepFloats) => Normalize(null, x, shift, scale, h, stats, d, rowsPerImage, keepFloats);

    /// <summary><see cref="AdaLayerNorm"/> of x = r.Dst, made first as (branch + bias) gate + src by the same kernel.</summary>
    private void GatedAdaLayerNorm(in GatedResidualViews r, ArrayView<float> shift, ArrayView<float> scale, ProductOperand h, ArrayView<float> stats,
        int d, int rowsPerImage, bool keepFloats) => Normalize(r, r.Dst, shift, scale, h, stats, d, rowsPerImage, keepFloats);

    private void Normalize(GatedResidualViews? residual, ArrayView<float> x, ArrayView<float> shift, ArrayView<float> scale, ProductOperand h,
        ArrayView<float> stats, int d, int rowsPerImage, bool keepFloats)
    {
        if (h.HasBf16 && !keepFloats)
        {
            if (residual is { } r) _kernels.GatedResidualAdaLayerNormBf16(r, shift, scale, default, h.F32, h.B16, stats, d, rowsPerImage);
            else _kernels.AdaLayerNormForwardBf16(x, shift, scale, default, h.F32, h.B16, stats, d, rowsPerImage);
            return;
        }
        if (residual is { } gated) _kernels.GatedResidualAdaLayerNorm(gated, shift, scale, default, h.F32, stats, d, rowsPerImage);
        else _kernels.AdaLayerNormForward(x, shift, scale, default, h.F32, stats, d, rowsPerImage);
        if (h.HasBf16) _kernels.RoundToBf16(h.F32, h.B16);
    }

    /// <summary>y (rows, out) = x (rows, in) W^T + bias with W (out, in), as Nn.Linear.Forward: bias rows, then the product added.</summary>
    private void Linear(ProductOperand x, ArrayView<float> weight, ArrayView<float> bias, ArrayView<float> y, int rows, int inFeatures, int outFeatures)
    {
        _kernels.RepeatRow(bias, y, outFeatures);
        _products.Forward(x, weight, y, rows, inFeatures, outFeatures);
    }

    public void Dispose()
    {
        _activations?.Dispose();
        _backward?.Dispose();
        _weights.Dispose();
        _gradients?.Dispose();
    }

    /// <summary>The attention cores' geometry for a batch of <paramref name="batch"/> images of this network.</summary>
    private AttentionGeometry Geometry(int batch) =>
        new(batch, Config.GridSize, Config.NumHeads, Config.HeadDim, Config.MediatorGrid, 1f / MathF.Sqrt(Config.HeadDim));
}
