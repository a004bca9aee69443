using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using MediatorDiT.Nn;
using MediatorDiT.Tensors;

namespace MediatorDiT.Models;

/// <summary>
/// The SiT/DiT network: patch embedding + fixed sin-cos positions, adaLN-Zero blocks conditioned on
/// timestep + class, final layer, unpatchify. Forward and backward are explicit; parameter names equal
/// the official state-dict keys. Not thread-safe: one forward/backward at a time per instance.
/// </summary>
public sealed class SiTModel : IParameterSet
{
    /// <summary>The validated hyper-parameters the network was built for.</summary>
    public ModelConfig Config { get; }
    /// <summary>"pos_embed" (1, N, D): the fixed 2D sin-cos position table (not trained).</summary>
    public Parameter PosEmbed { get; }
    internal PatchEmbed XEmbedder { get; }
    internal TimestepEmbedder TEmbedder { get; }
    internal LabelEmbedder YEmbedder { get; }
    internal IReadOnlyList<SiTBlock> Blocks { get; }
    internal FinalLayer Final { get; }
    /// <summary>Every parameter under its official state-dict key, in PyTorch's order (pos_embed first).</summary>
    public IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>
    /// True (the default) keeps every block's forward activations for <see cref="Backward"/>. Set false for
    /// sampling: the blocks then share one set of activation buffers, so a forward holds one block's worth
    /// (SiT-XL/2, 256 tokens, 2 rows with guidance: ~33 MB instead of ~0.9 GB), and Backward refuses.
    /// </summary>
    public bool KeepActivations
    {
        get => _keepActivations;
        set
        {
            if (value == _keepActivations) return;
            _keepActivations = value;
            foreach (var block in Blocks) block.ShareForwardBuffers(value ? null : Blocks[0]);
        }
    }

    private bool _keepActivations = true;

    /// <summary>
    /// The compute settings (threads, GEMM backend, device) this model's forward and backward run under;
    /// null (the default) runs under the caller's <see cref="ComputeContext.Current"/>.
    /// </summary>
    public ComputeContext? Compute { get; set; }

    /// <summary>When set, Forward keeps a copy of every block's output (for parity checks and analysis).</summary>
    public bool RecordBlockOutputs { get; set; }
    /// <summary>With <see cref="RecordBlockOutputs"/>, each block's output (B, N, D) of the last forward, in block order; else empty.</summary>
    public IReadOnlyList<Tensor> BlockOutputs => _blockOutputs;

    private readonly List<Tensor> _blockOutputs = [];
    private int _batch;
    private readonly Tensor _x = new(0), _temb = new(0), _c = new(0), _siluC = new(0), _tokensOut = new(0);
    private readonly Tensor _dX = new(0), _dTokensOut = new(0), _dSiluC = new(0), _dC = new(0);

    /// <summary>
    /// Builds the network for <paramref name="config"/> (validated first; a <see cref="MediatorDiTException"/> names a
    /// bad field) with pos_embed filled and every other parameter zero; <see cref="ModelFiles.Load"/> builds one with weights from a file.
    /// </summary>
    public SiTModel(ModelConfig config)
    {
        Config = config.Validate();
        int d = config.HiddenSize;
        PosEmbed = new Parameter("pos_embed", [1, config.NumTokens, d], trainable: false);
        PositionalEmbedding.Fill2DSinCos(PosEmbed.Value.Span, d, config.GridSize);
        XEmbedder = new PatchEmbed(config.InChannels, config.PatchSize, d);
        TEmbedder = new TimestepEmbedder(d);
        YEmbedder = new LabelEmbedder(config.NumClasses, d, config.ClassDropoutProb);
        Blocks = Enumerable.Range(0, config.Depth).Select(i => new SiTBlock($"blocks.{i}.", config)).ToArray();
        foreach (var block in Blocks) block.SharePackedWeights(Blocks[0]);
        Final = new FinalLayer(d, config.PatchSize, config.OutChannels);
        // PyTorch's order: the module's own parameter (pos_embed) first, then children as registered.
        Parameters =
        [
            PosEmbed, XEmbedder.Weight, XEmbedder.Bias, TEmbedder.W0, TEmbedder.B0, TEmbedder.W2, TEmbedder.B2,
            YEmbedder.Table, .. Blocks.SelectMany(b => b.Parameters),
            Final.LinearWeight, Final.LinearBias, Final.AdaWeight, Final.AdaBias,
        ];
    }

    /// <summary>The parameter with state-dict key <paramref name="name"/>; throws a <see cref="KeyNotFoundException"/> when there is none.</summary>
    public Parameter this[string name] =>
        Parameters.FirstOrDefault(p => p.Name == name) ?? throw new KeyNotFoundException($"the model has no parameter '{name}'.");

    /// <summary>
    /// The batch size of a forward's inputs for a network of <paramref name="cfg"/>: x must be (B, C, H, W) with the
    /// config's channels and side, and t and y one value per sample; otherwise one sentence saying what was found.
    /// </summary>
    internal static int CheckInputs(ModelConfig cfg, Tensor x, int times, int labels)
    {
        if (x.Rank != 4 || x.Dim(1) != cfg.InChannels || x.Dim(2) != cfg.InputSize || x.Dim(3) != cfg.InputSize)
            throw new MediatorDiTException(
                $"input x has shape [{x.ShapeString}] but the model expects [B, {cfg.InChannels}, {cfg.InputSize}, {cfg.InputSize}].");
        int b = x.Dim(0);
        if (times != b || labels != b)
            throw new MediatorDiTException($"batch mismatch: x has {b} samples, t has {times}, y has {labels}.");
        return b;
    }

    /// <summary>
    /// x (B, C, H, W), t (B) timesteps, y (B) labels (num_classes = null label).
    /// Returns (B, C, H, W) for SiT (the learned-sigma half dropped) or (B, 2C, H, W) for DiT.
    /// </summary>
    public Tensor Forward(Tensor x, ReadOnlySpan<float> t, ReadOnlySpan<int> y)
    {
        using var compute = ComputeContext.Use(Compute);
        var cfg = Config;
        int b = CheckInputs(cfg, x, t.Length, y.Length);
        _batch = b;
        int d = cfg.HiddenSize, n = cfg.NumTokens;
        _x.EnsureShape(b * n, d);
        _temb.EnsureShape(b, d);
        _c.EnsureShape(b, d);
        _siluC.EnsureShape(b, d);

        using (OpProfiler.Time("embed"))
        {
            XEmbedder.Forward(x, _x);
            var pos = PosEmbed.Value.Span;
            for (int i = 0; i < b; i++)
            {
                var rows = _x.Span.Slice(i * n * d, n * d);
                TensorPrimitives.Add(rows, pos, rows);
            }
            TEmbedder.Forward(t, _temb);
            YEmbedder.Forward(y, _c);
            TensorPrimitives.Add(_c.Span, _temb.Span, _c.Span);
            Silu.Forward(_c.Span, _siluC.Span);
        }

        _blockOutputs.Clear();
        foreach (var block in Blocks)
        {
            block.Forward(_x, _siluC, b);
            if (RecordBlockOutputs) _blockOutputs.Add(_x.Clone().Reshape(b, n, d));
        }

        int outWidth = cfg.PatchSize * cfg.PatchSize * cfg.OutChannels;
        int keep = cfg.ReturnedChannels, size = cfg.InputSize;
        var output = new Tensor(b, keep, size, size);
        using (OpProfiler.Time("final"))
        {
            _tokensOut.EnsureShape(b * n, outWidth);
            Final.Forward(_x, _siluC, _tokensOut, b);
            for (int i = 0; i < b; i++)
                Patchify.Unpatchify(_tokensOut.Span.Slice(i * n * outWidth, n * outWidth), output.Span.Slice(i * keep * size * size),
                    cfg.OutChannels, cfg.GridSize, cfg.PatchSize, keep);
        }
        return output;
    }

    /// <summary>
    /// Back-propagates dL/d(output) of the last Forward: accumulates every trainable parameter's
    /// gradient (call <see cref="ZeroGrad"/> first) and returns dL/dx (B, C, H, W).
    /// </summary>
    public Tensor Backward(Tensor dOutput)
    {
        using var compute = ComputeContext.Use(Compute);
        var cfg = Config;
        int b = _batch, d = cfg.HiddenSize, n = cfg.NumTokens, keep = cfg.ReturnedChannels, size = cfg.InputSize;
        int outWidth = cfg.PatchSize * cfg.PatchSize * cfg.OutChannels;
        if (!KeepActivations)
            throw new MediatorDiTException("Backward needs every block's activations: set KeepActivations = true before the forward pass.");
        if (dOutput.Length != b * keep * size * size)
            throw new ArgumentException($"dOutput has {dOutput.Length} elements, expected [{b}, {keep}, {size}, {size}].");
        _dTokensOut.EnsureShape(b * n, outWidth);
        _dX.EnsureShape(b * n, d);
        _dSiluC.EnsureShape(b, d);
        _dC.EnsureShape(b, d);
        _dSiluC.Zero();
        using (OpProfiler.Time("bwd.final"))
        {
            for (int i = 0; i < b; i++)
                Patchify.UnpatchifyBackward(dOutput.Span.Slice(i * keep * size * size), _dTokensOut.Span.Slice(i * n * outWidth, n * outWidth),
                    cfg.OutChannels, cfg.GridSize, cfg.PatchSize, keep);
            Final.Backward(_dTokensOut, _siluC, _dX, _dSiluC);
        }
        for (int i = Blocks.Count - 1; i >= 0; i--)
            Blocks[i].Backward(_dX, _siluC, _dSiluC);

        // c = t_emb + y_emb, siluC = SiLU(c).
        var dx = new Tensor(b, cfg.InChannels, size, size);
        using (OpProfiler.Time("bwd.embed"))
        {
            Silu.Backward(_c.Span, _dSiluC.Span, _dC.Span);
            TEmbedder.Backward(_dC);
            YEmbedder.Backward(_dC);
            XEmbedder.Backward(_dX, dx);
        }
        return dx;
    }

    /// <summary>Zeroes the gradient of every trainable parameter (before a <see cref="Backward"/>, which accumulates).</summary>
    public void ZeroGrad()
    {
        foreach (var p in Parameters) p.Grad?.Zero();
    }

    /// <summary>
    /// forward_with_cfg: the first half of the batch is run twice (with its labels, and with the second
    /// half's labels, normally the null label); guidance uncond + s (cond - uncond) is applied to the first
    /// <paramref name="guidedChannels"/> channels (the official code: 3) or to all when null, and the
    /// guided half is repeated so the output has the input's batch size.
    /// </summary>
    public Tensor ForwardWithCfg(Tensor x, ReadOnlySpan<float> t, ReadOnlySpan<int> y, float cfgScale, int? guidedChannels = 3)
    {
        int b = x.Dim(0);
        if (b % 2 != 0) throw new MediatorDiTException($"classifier-free guidance needs an even batch (conditional + unconditional halves), got {b}.");
        int per = x.Length / b, half = b / 2;
        var combined = new Tensor(x.Shape);
        x.Span[..(half * per)].CopyTo(combined.Span);
        x.Span[..(half * per)].CopyTo(combined.Span[(half * per)..]);
        var output = Forward(combined, t, y);
        int channels = output.Dim(1), plane = output.Dim(2) * output.Dim(3), outPer = channels * plane;
        int guided = Math.Min(guidedChannels ?? channels, channels);
        var o = output.Span;
        for (int i = 0; i < half; i++)
            GuidanceKernel.Combine(o.Slice(i * outPer, guided * plane), o.Slice((half + i) * outPer, guided * plane), cfgScale);
        return output;
    }
}
