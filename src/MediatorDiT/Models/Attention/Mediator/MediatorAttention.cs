using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using MediatorDiT.Nn;
using MediatorDiT.Tensors;

namespace MediatorDiT.Models;

/// <summary>
/// Attention through n mediator tokens (Pu et al., ECCV 2024), as the official AttentionWithMediators:
///   qkv (B*N, 3D) -> q, k, v; T = adaptive-avg-pool of q over the G x G token grid to g x g (n = g^2 tokens);
///   per head: A1 = softmax(T k^T * s + bias1) (n, N), Vm = A1 v (n, hd),
///             A2 = softmax(q T^T * s + bias2) (N, n), O = A2 Vm (N, hd);
///   O += dwc(v) (3x3 depthwise), y = proj(O).
/// bias1 = resize(an_bias 7x7 -> G x G) + ah_bias (rows) + aw_bias (cols), (heads, n, N);
/// bias2 = resize(na_bias)^T + ha_bias + wa_bias, (heads, N, n). Cost is linear in N.
/// </summary>
internal sealed partial class MediatorAttention : IAttention
{
    private readonly int _dim, _heads, _headDim, _grid, _mediators, _medGrid;
    private readonly float _scale;
    public Parameter AnBias { get; }
    public Parameter NaBias { get; }
    public Parameter AhBias { get; }
    public Parameter AwBias { get; }
    public Parameter HaBias { get; }
    public Parameter WaBias { get; }
    public Parameter QkvWeight { get; }
    public Parameter QkvBias { get; }
    public Parameter ProjWeight { get; }
    public Parameter ProjBias { get; }
    public Parameter DwcWeight { get; }
    public Parameter DwcBias { get; }
    public IReadOnlyList<Parameter> Parameters { get; }
    public string Kind => MediatorAttentionKind.KindName;
    public int Mediators => _mediators;

    // Saved by Forward for Backward. Per (b, h) blocks: A1 (n, N), A2 (N, n), Vm (n, hd).
    private Tensor? _input;
    private int _batch;
    private Tensor _qkv = new(0), _tokens = new(0), _a1 = new(0), _a2 = new(0), _vm = new(0), _o = new(0); // shared between blocks for inference
    private readonly Tensor _bias1 = new(0), _bias1T = new(0), _bias2 = new(0), _taps = new(0);
    private readonly Tensor _dO = new(0), _dqkv = new(0), _dTaps = new(0);
    private readonly Tensor _dS1 = new(0), _dS2 = new(0), _dBias1 = new(0), _dBias2 = new(0), _resized = new(0);

    /// <param name="prefix">state-dict prefix, e.g. "blocks.0.attn."</param>
    /// <param name="dim">token width D</param>
    /// <param name="heads">number of heads; must divide <paramref name="dim"/></param>
    /// <param name="grid">the token grid side G the position biases are built for (input_size / patch_size)</param>
    /// <param name="mediators">number of mediator tokens n; a perfect square, else a <see cref="MediatorDiTException"/></param>
    public MediatorAttention(string prefix, int dim, int heads, int grid, int mediators)
    {
        int g = (int)Math.Round(Math.Sqrt(mediators));
        if (mediators <= 0 || g * g != mediators)
            throw new MediatorDiTException($"mediator_num must be a perfect square (1, 4, 9, 16, 64, ...), got {mediators}.");
        _dim = dim;
        _heads = heads;
        _headDim = dim / heads;
        _scale = 1f / MathF.Sqrt(_headDim);
        _grid = grid;
        _mediators = mediators;
        _medGrid = g;
        AnBias = new Parameter(prefix + "an_bias", [heads, mediators, 7, 7]);
        NaBias = new Parameter(prefix + "na_bias", [heads, mediators, 7, 7]);
        AhBias = new Parameter(prefix + "ah_bias", [1, heads, mediators, grid, 1]);
        AwBias = new Parameter(prefix + "aw_bias", [1, heads, mediators, 1, grid]);
        HaBias = new Parameter(prefix + "ha_bias", [1, heads, grid, 1, mediators]);
        WaBias = new Parameter(prefix + "wa_bias", [1, heads, 1, grid, mediators]);
        QkvWeight = new Parameter(prefix + "qkv.weight", [3 * dim, dim]);
        QkvBias = new Parameter(prefix + "qkv.bias", [3 * dim]);
        ProjWeight = new Parameter(prefix + "proj.weight", [dim, dim]);
        ProjBias = new Parameter(prefix + "proj.bias", [dim]);
        DwcWeight = new Parameter(prefix + "dwc.weight", [dim, 1, 3, 3]);
        DwcBias = new Parameter(prefix + "dwc.bias", [dim]);
        // PyTorch lists a module's own parameters before its children's.
        Parameters = [AnBias, NaBias, AhBias, AwBias, HaBias, WaBias, QkvWeight, QkvBias, ProjWeight, ProjBias, DwcWeight, DwcBias];
    }

    // The bias parameters the cached bias1/bias2 were built from: the resized maps are rebuilt only when
    // these change (every step in training, once per loaded model in sampling).
    private float[] _biasSnapshot = [];

    private bool BiasesAreCurrent()
    {
        ReadOnlySpan<Parameter> sources = [AnBias, NaBias, AhBias, AwBias, HaBias, WaBias];
        int total = 0;
        foreach (var p in sources) total += p.Value.Length;
        bool same = _biasSnapshot.Length == total;
        int offset = 0;
        foreach (var p in sources)
        {
            if (same && !p.Value.Span.SequenceEqual(_biasSnapshot.AsSpan(offset, p.Value.Length))) same = false;
            offset += p.Value.Length;
        }
        if (same) return true;
        if (_biasSnapshot.Length != total) _biasSnapshot = new float[total];
        offset = 0;
        foreach (var p in sources)
        {
            p.Value.Span.CopyTo(_biasSnapshot.AsSpan(offset));
            offset += p.Value.Length;
        }
        return false;
    }

    /// <summary>
    /// Builds bias1 (heads, n, N), its transpose bias1T (heads, N, n) the fused kernel reads, and bias2 (heads, N, n)
    /// from the parameters, unless unchanged.
    /// </summary>
    private void BuildBiases()
    {
        if (BiasesAreCurrent() && _bias1.Length > 0) return;
        int h = _heads, n = _mediators, G = _grid, N = G * G;
        _bias1.EnsureShape(h, n, N);
        _bias1T.EnsureShape(h, N, n);
        _bias2.EnsureShape(h, N, n);
        _resized.EnsureShape(h, n, N);
        // bias1 (h*n, G, G) = resize(an_bias) + ah_bias (h*n, G, 1) + aw_bias (h*n, 1, G), and its transpose (h, N, n).
        BilinearResize.Forward(AnBias.Value.Span, _bias1.Span, h * n, 7, 7, G, G);
        MediatorBiases.AddAxisBiases(_bias1.Span, AhBias.Value.Span, AwBias.Value.Span, h * n, G, G);
        MediatorBiases.Transpose(_bias1.Span, _bias1T.Span, h, n, N);
        // bias2 (h, G, G, n) = resize(na_bias)^T + ha_bias (h, G, 1, n) + wa_bias (h, 1, G, n).
        BilinearResize.Forward(NaBias.Value.Span, _resized.Span, h * n, 7, 7, G, G);
        MediatorBiases.Transpose(_resized.Span, _bias2.Span, h, n, N);
        MediatorBiases.AddAxisBiasesPerMediator(_bias2.Span, HaBias.Value.Span, WaBias.Value.Span, h, G, G, n);
    }

    /// <summary>
    /// The position biases the logits get, built from the current parameters: bias1 (heads, n, N) for the mediators'
    /// key logits and bias2 (heads, N, n) for the queries' mediator logits (the device backend uploads them).
    /// </summary>
    internal (Tensor Bias1, Tensor Bias2) PositionBiases()
    {
        BuildBiases();
        return (_bias1, _bias2);
    }

    public void Forward(Tensor input, Tensor output, int batch)
    {
        int d = _dim, hd = _headDim, n = _mediators, G = _grid, N = G * G, rows = batch * N;
        if (input.Length != rows * d)
            throw new MediatorDiTException($"mediator attention built for a {G}x{G} token grid got {input.Length / d / batch} tokens per image.");
        _input = input;
        _batch = batch;
        _qkv.EnsureShape(rows, 3 * d);
        _tokens.EnsureShape(batch, n, d);
        _a1.EnsureShape(batch, _heads, n, N);
        _a2.EnsureShape(batch, _heads, N, n);
        _vm.EnsureShape(batch, _heads, n, hd);
        _o.EnsureShape(rows, d);
        _taps.EnsureShape(9, d);
        using (OpProfiler.Time("attn.m.biases"))
        {
            BuildBiases();
            DepthwiseConv3x3.TransposeWeight(DwcWeight.Value.Span, _taps.Span, d);
        }
        using (OpProfiler.Time("attn.qkv"))
            Linear.Forward(input.Span, QkvWeight.Value.Span, QkvBias.Value.Span, _qkv.Span, rows, d, 3 * d);
        float[] qkv = _qkv.Data, t = _tokens.Data, a1 = _a1.Data, a2 = _a2.Data, vm = _vm.Data, o = _o.Data;
        float[] b1t = _bias1T.Data, b2 = _bias2.Data, taps = _taps.Data, dwcBias = DwcBias.Value.Data;
        // One parallel region per layer: every step below touches only head h's channels of image b,
        // so (b, h) items are independent from the pooling to the depthwise conv.
        using (OpProfiler.Time("attn.m.core")) ParallelLoop.For(batch * _heads, bh =>
        {
            int b = bh / _heads, h = bh % _heads;
            int qOff = b * N * 3 * d + h * hd, tOff = b * n * d + h * hd;
            var oh = o.AsSpan(b * N * d + h * hd);
            // Pooling, both softmax attentions through the mediators and O += dwc(v), fused per (b, h).
            MediatorCoreKernel.Forward(qkv.AsSpan(qOff), qkv.AsSpan(qOff + d), qkv.AsSpan(qOff + 2 * d), 3 * d,
                b1t.AsSpan(h * N * n, N * n), b2.AsSpan(h * N * n, N * n), taps.AsSpan(h * hd), d, dwcBias.AsSpan(h * hd, hd),
                t.AsSpan(tOff), d, a1.AsSpan(bh * n * N, n * N), a2.AsSpan(bh * N * n, N * n), vm.AsSpan(bh * n * hd, n * hd),
                oh, d, G, G, _medGrid, hd, _scale);
        });
        using (OpProfiler.Time("attn.proj"))
            Linear.Forward(_o.Span, ProjWeight.Value.Span, ProjBias.Value.Span, output.Span, rows, d, d);
    }

    public void Backward(Tensor dOutput, Tensor dInput)
    {
        if (_input is null) throw new InvalidOperationException("Backward called before Forward.");
        int batch = _batch, d = _dim, hd = _headDim, n = _mediators, G = _grid, N = G * G, rows = batch * N, H = _heads;
        _dO.EnsureShape(rows, d);
        _dqkv.EnsureShape(rows, 3 * d);
        _dTaps.EnsureShape(batch, 10, d);
        _dS1.EnsureShape(batch, H, n, N);
        _dS2.EnsureShape(batch, H, N, n);
        _dTaps.Zero();
        using (OpProfiler.Time("bwd.attn.proj"))
            Linear.Backward(_o.Span, ProjWeight.Value.Span, dOutput.Span, ProjWeight.Grad!.Span, ProjBias.Grad!.Span,
                _dO.Span, rows, d, d);
        float[] qkv = _qkv.Data, dqkv = _dqkv.Data, dO = _dO.Data, taps = _taps.Data, dTapsAll = _dTaps.Data;
        float[] t = _tokens.Data, a1 = _a1.Data, a2 = _a2.Data, vm = _vm.Data, ds1 = _dS1.Data, ds2 = _dS2.Data;
        // One parallel region: item (b, h) overwrites only head h's channels of image b in dq, dk, dv (so dqkv needs no
        // clearing) and its (n, N) and (N, n) blocks of dS1 and dS2, and adds to its slice of the image's tap and bias
        // gradients, (B, 10, D): 9 taps + bias, added in image order below.
        using (OpProfiler.Time("bwd.attn.m.core")) ParallelLoop.For(batch * H, bh =>
        {
            int b = bh / H, h = bh % H;
            int qOff = b * N * 3 * d + h * hd, tOff = b * n * d + h * hd;
            var own = dTapsAll.AsSpan(b * 10 * d, 10 * d);
            MediatorCoreKernel.Backward(qkv.AsSpan(qOff), qkv.AsSpan(qOff + d), qkv.AsSpan(qOff + 2 * d), 3 * d,
                taps.AsSpan(h * hd), d, t.AsSpan(tOff), d, a1.AsSpan(bh * n * N, n * N), a2.AsSpan(bh * N * n, N * n),
                vm.AsSpan(bh * n * hd, n * hd), dO.AsSpan(b * N * d + h * hd), d,
                dqkv.AsSpan(qOff), dqkv.AsSpan(qOff + d), dqkv.AsSpan(qOff + 2 * d),
                ds1.AsSpan(bh * n * N, n * N), ds2.AsSpan(bh * N * n, N * n), own[(h * hd)..(9 * d)], own.Slice(9 * d + h * hd, hd),
                G, G, _medGrid, hd, _scale);
        });
        var poolScope = OpProfiler.Time("bwd.attn.m.biases");
        var dw = DwcWeight.Grad!.Span;
        var dwb = DwcBias.Grad!.Span;
        for (int b = 0; b < batch; b++)
        {
            var own = _dTaps.Span.Slice(b * 10 * d, 10 * d);
            DepthwiseConv3x3.AccumulateWeightGradient(own, dw, d);
            TensorPrimitives.Add(dwb, own[(9 * d)..], dwb);
        }
        AccumulateBiasGradients(batch);
        poolScope.Dispose();
        using (OpProfiler.Time("bwd.attn.qkv"))
            Linear.Backward(_input.Span, QkvWeight.Value.Span, _dqkv.Span, QkvWeight.Grad!.Span, QkvBias.Grad!.Span,
                dInput.Span, rows, d, 3 * d);
    }

    /// <summary>The biases enter the logits additively, so their gradient is dS summed over the batch.</summary>
    private void AccumulateBiasGradients(int batch)
    {
        int H = _heads, n = _mediators, G = _grid, N = G * G;
        _dBias1.EnsureShape(H, n, N);
        _dBias2.EnsureShape(H, N, n);
        var db1 = _dBias1.Span;
        var db2 = _dBias2.Span;
        db1.Clear();
        db2.Clear();
        for (int b = 0; b < batch; b++)
        {
            TensorPrimitives.Add(db1, _dS1.Span.Slice(b * H * n * N, H * n * N), db1);
            TensorPrimitives.Add(db2, _dS2.Span.Slice(b * H * N * n, H * N * n), db2);
        }
        BilinearResize.BackwardAccumulate(db1, AnBias.Grad!.Span, H * n, 7, 7, G, G);
        MediatorBiases.AxisBiasGradients(db1, AhBias.Grad!.Span, AwBias.Grad!.Span, H * n, G, G);

        // bias2's resized part is stored transposed: gather it back to (H, n, N) before the resize's transpose.
        MediatorBiases.AxisBiasGradientsPerMediator(db2, HaBias.Grad!.Span, WaBias.Grad!.Span, H, G, G, n);
        MediatorBiases.Transpose(db2, _resized.Span, H, N, n);
        BilinearResize.BackwardAccumulate(_resized.Span, NaBias.Grad!.Span, H * n, 7, 7, G, G);
    }

    /// <summary>The composed query-to-key map A2 A1 (N, N) of the last forward, for the redundancy analysis.</summary>
    public void ComposedAttentionMap(int sample, int head, Span<float> map)
    {
        int n = _mediators, N = _grid * _grid, bh = sample * _heads + head;
        Gemm.Sgemm(false, false, N, N, n, 1f, _a2.Data.AsSpan(bh * N * n, N * n), n, _a1.Data.AsSpan(bh * n * N, n * N), N, 0f, map, N);
    }
}
