using MediatorDiT.Nn;
using MediatorDiT.Tensors;

namespace MediatorDiT.Models;

/// <summary>
/// Multi-head softmax self-attention as timm's Attention (keys attn.qkv, attn.proj):
/// qkv (B*N, 3D) with columns [q | k | v], each split into heads of hd channels;
/// per head O = softmax(q k^T * hd^-0.5) v.
/// </summary>
public sealed class FullAttention : IAttention
{
    private readonly int _dim, _heads, _headDim;
    private readonly float _scale;
    public Parameter QkvWeight { get; }
    public Parameter QkvBias { get; }
    public Parameter ProjWeight { get; }
    public Parameter ProjBias { get; }
    public IReadOnlyList<Parameter> Parameters { get; }
    public string Kind => "full";

    // Saved by Forward for Backward.
    private Tensor? _input;
    private int _batch, _tokens;
    private readonly Tensor _qkv = new(0), _probs = new(0), _heads_out = new(0);
    private readonly Tensor _dqkv = new(0), _dHeads = new(0), _dProbs = new(0);

    public FullAttention(string prefix, int dim, int heads)
    {
        _dim = dim;
        _heads = heads;
        _headDim = dim / heads;
        _scale = 1f / MathF.Sqrt(_headDim);
        QkvWeight = new Parameter(prefix + "qkv.weight", [3 * dim, dim]);
        QkvBias = new Parameter(prefix + "qkv.bias", [3 * dim]);
        ProjWeight = new Parameter(prefix + "proj.weight", [dim, dim]);
        ProjBias = new Parameter(prefix + "proj.bias", [dim]);
        Parameters = [QkvWeight, QkvBias, ProjWeight, ProjBias];
    }

    public void Forward(Tensor input, Tensor output, int batch)
    {
        int rows = input.Length / _dim, n = rows / batch, d = _dim, hd = _headDim;
        _input = input;
        _batch = batch;
        _tokens = n;
        _qkv.EnsureShape(rows, 3 * d);
        _probs.EnsureShape(batch, _heads, n, n);
        _heads_out.EnsureShape(rows, d);
        Linear.Forward(input.Span, QkvWeight.Value.Span, QkvBias.Value.Span, _qkv.Span, rows, d, 3 * d);

        float[] qkv = _qkv.Data, probs = _probs.Data, o = _heads_out.Data;
        ParallelLoop.For(batch * _heads, bh =>
        {
            int b = bh / _heads, h = bh % _heads;
            int qOff = b * n * 3 * d + h * hd;
            var p = probs.AsSpan(bh * n * n, n * n);
            Gemm.Sgemm(false, true, n, n, hd, _scale, qkv.AsSpan(qOff), 3 * d, qkv.AsSpan(qOff + d), 3 * d, 0f, p, n);
            Softmax.Forward(p, p, n, n);
            Gemm.Sgemm(false, false, n, hd, n, 1f, p, n, qkv.AsSpan(qOff + 2 * d), 3 * d, 0f,
                o.AsSpan(b * n * d + h * hd), d);
        });
        Linear.Forward(_heads_out.Span, ProjWeight.Value.Span, ProjBias.Value.Span, output.Span, rows, d, d);
    }

    public void Backward(Tensor dOutput, Tensor dInput)
    {
        if (_input is null) throw new InvalidOperationException("Backward called before Forward.");
        int batch = _batch, n = _tokens, rows = batch * n, d = _dim, hd = _headDim;
        _dHeads.EnsureShape(rows, d);
        _dqkv.EnsureShape(rows, 3 * d);
        _dProbs.EnsureShape(batch, _heads, n, n);
        Linear.Backward(_heads_out.Span, ProjWeight.Value.Span, dOutput.Span, ProjWeight.Grad!.Span, ProjBias.Grad!.Span,
            _dHeads.Span, rows, d, d);

        float[] qkv = _qkv.Data, probs = _probs.Data, dO = _dHeads.Data, dqkv = _dqkv.Data, dp = _dProbs.Data;
        ParallelLoop.For(batch * _heads, bh =>
        {
            int b = bh / _heads, h = bh % _heads;
            int qOff = b * n * 3 * d + h * hd;
            var p = probs.AsSpan(bh * n * n, n * n);
            var dP = dp.AsSpan(bh * n * n, n * n);
            var dOh = dO.AsSpan(b * n * d + h * hd);
            // dP = dO v^T; dv = P^T dO; dS = softmax'(dP); dq = s dS k; dk = s dS^T q.
            Gemm.Sgemm(false, true, n, n, hd, 1f, dOh, d, qkv.AsSpan(qOff + 2 * d), 3 * d, 0f, dP, n);
            Gemm.Sgemm(true, false, n, hd, n, 1f, p, n, dOh, d, 0f, dqkv.AsSpan(qOff + 2 * d), 3 * d);
            Softmax.Backward(p, dP, dP, n, n);
            Gemm.Sgemm(false, false, n, hd, n, _scale, dP, n, qkv.AsSpan(qOff + d), 3 * d, 0f, dqkv.AsSpan(qOff), 3 * d);
            Gemm.Sgemm(true, false, n, hd, n, _scale, dP, n, qkv.AsSpan(qOff), 3 * d, 0f, dqkv.AsSpan(qOff + d), 3 * d);
        });
        Linear.Backward(_input.Span, QkvWeight.Value.Span, _dqkv.Span, QkvWeight.Grad!.Span, QkvBias.Grad!.Span,
            dInput.Span, rows, d, 3 * d);
    }

    public void ComposedAttentionMap(int sample, int head, Span<float> map)
    {
        int n = _tokens;
        _probs.Data.AsSpan((sample * _heads + head) * n * n, n * n).CopyTo(map);
    }
}
