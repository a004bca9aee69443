using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using MediatorDiT.Nn;
using MediatorDiT.Tensors;

namespace MediatorDiT.Models.Vae;

/// <summary>
/// The VAE mid-block attention (diffusers v0.14 AttentionBlock, one head as wide as the channels):
/// n = GroupNorm(x) read as HW positions of C features; q, k, v = Linear(n); out = softmax(q k^T / sqrt(C)) v;
/// y = x + proj_attn(out) (rescale factor 1). Parameter names follow v0.14 (group_norm, query, key, value,
/// proj_attn); <see cref="VaeKeyNames"/> maps today's to_q/to_k/to_v/to_out.0 onto them.
/// </summary>
internal sealed class VaeAttention
{
    public int Channels { get; }
    public GroupNormLayer GroupNorm { get; }
    public Parameter QueryWeight { get; }
    public Parameter QueryBias { get; }
    public Parameter KeyWeight { get; }
    public Parameter KeyBias { get; }
    public Parameter ValueWeight { get; }
    public Parameter ValueBias { get; }
    public Parameter ProjWeight { get; }
    public Parameter ProjBias { get; }

    public VaeAttention(string name, int channels, int groups)
    {
        Channels = channels;
        GroupNorm = new GroupNormLayer(name + ".group_norm", channels, groups);
        (QueryWeight, QueryBias) = LinearParameters(name + ".query", channels);
        (KeyWeight, KeyBias) = LinearParameters(name + ".key", channels);
        (ValueWeight, ValueBias) = LinearParameters(name + ".value", channels);
        (ProjWeight, ProjBias) = LinearParameters(name + ".proj_attn", channels);
    }

    private static (Parameter, Parameter) LinearParameters(string name, int channels) =>
        (new Parameter(name + ".weight", [channels, channels], trainable: false), new Parameter(name + ".bias", [channels], trainable: false));

    public IEnumerable<Parameter> Parameters =>
        [.. GroupNorm.Parameters, QueryWeight, QueryBias, KeyWeight, KeyBias, ValueWeight, ValueBias, ProjWeight, ProjBias];

    /// <summary>ws.Current (C, H, W) -> ws.Next (C, H, W); the normalised map goes to ws.T1.</summary>
    public void Forward(VaeWorkspace ws, int height, int width)
    {
        int c = Channels, n = height * width;
        Tensor x = ws.Current, y = ws.Next;
        GroupNorm.Forward(x, height, width, ws.T1, silu: false);
        Project(ws.T1, QueryWeight, QueryBias, ws.Q, n, c);
        Project(ws.T1, KeyWeight, KeyBias, ws.K, n, c);
        Project(ws.T1, ValueWeight, ValueBias, ws.V, n, c);

        // scores (n, n) = q k^T / sqrt(C), softmax over keys.
        ws.Scores.EnsureShape(n, n);
        Gemm.Sgemm(false, true, n, n, c, 1f / MathF.Sqrt(c), ws.Q.Span, c, ws.K.Span, c, 0f, ws.Scores.Span, n);
        Tensor scores = ws.Scores;
        ParallelLoop.For(n, row => Softmax.ForwardRow(scores.Data.AsSpan(row * n, n), scores.Data.AsSpan(row * n, n)));

        // out (n, C) = p v; y (C, n) = x + Wp out^T + bp.
        ws.AttentionOut.EnsureShape(n, c);
        Gemm.Sgemm(false, false, n, c, n, 1f, ws.Scores.Span, n, ws.V.Span, c, 0f, ws.AttentionOut.Span, c);
        y.EnsureShape(c, height, width);
        var ys = y.Span;
        for (int ch = 0; ch < c; ch++)
            TensorPrimitives.Add(x.Span.Slice(ch * n, n), ProjBias.Value.Data[ch], ys.Slice(ch * n, n));
        Gemm.Sgemm(false, true, c, n, c, 1f, ProjWeight.Value.Span, c, ws.AttentionOut.Span, c, 1f, ys, n);
    }

    /// <summary>dst (n, C) = src^T W^T + b, with src (C, n) channel-major as the conv layers leave it.</summary>
    private static void Project(Tensor src, Parameter weight, Parameter bias, Tensor dst, int n, int c)
    {
        dst.EnsureShape(n, c);
        var d = dst.Span;
        for (int i = 0; i < n; i++) bias.Value.Span.CopyTo(d.Slice(i * c, c));
        Gemm.Sgemm(true, true, n, c, c, 1f, src.Span, n, weight.Value.Span, c, 1f, d, c);
    }

    /// <summary>The four projections and the two attention products.</summary>
    public long MultiplyAccumulates(int height, int width)
    {
        long n = (long)height * width;
        return 4 * n * Channels * Channels + 2 * n * n * Channels;
    }
}
