using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using MediatorDiT.Tensors;

namespace MediatorDiT.Nn;

/// <summary>
/// nn.GroupNorm with affine weight and bias on NCHW: x, y (B, C, spatial), gamma, beta (C). The channels
/// of a group are contiguous, so each (image, group) is one block of C/groups * spatial floats; the blocks
/// run in parallel. Statistics are accumulated in double over float partial sums (biased variance,
/// two passes). Optionally applies SiLU to the result, as every diffusers norm-then-activation pair does.
/// y may alias x.
/// </summary>
internal static class GroupNorm
{
    /// <summary>The eps diffusers' VAE passes to every GroupNorm (PyTorch's default is 1e-5).</summary>
    public const float DiffusersEps = 1e-6f;

    /// <summary>Partial sums run over blocks of this many floats before joining the double total.</summary>
    private const int Block = 1024;

    public static void Forward(Tensor x, Tensor gamma, Tensor beta, Tensor y, int batch, int channels, int spatial,
        int groups, float eps = DiffusersEps, bool silu = false)
    {
        if (groups <= 0 || channels % groups != 0)
            throw new ArgumentException($"GroupNorm: {channels} channels do not split into {groups} groups.");
        int total = batch * channels * spatial;
        if (x.Length < total || y.Length < total || gamma.Length != channels || beta.Length != channels)
            throw new ArgumentException($"GroupNorm: buffers do not fit ({batch}, {channels}, {spatial}).");
        int perGroup = channels / groups;
        ParallelLoop.For(batch * groups, item =>
        {
            int b = item / groups, grp = item % groups, c0 = grp * perGroup;
            int offset = (b * channels + c0) * spatial, n = perGroup * spatial;
            var xs = x.Data.AsSpan(offset, n);
            var ys = y.Data.AsSpan(offset, n);
            double sum = 0;
            for (int i = 0; i < n; i += Block) sum += TensorPrimitives.Sum(xs.Slice(i, Math.Min(Block, n - i)));
            float mean = (float)(sum / n);
            TensorPrimitives.Subtract(xs, mean, ys);
            double squares = 0;
            for (int i = 0; i < n; i += Block) squares += TensorPrimitives.SumOfSquares(ys.Slice(i, Math.Min(Block, n - i)));
            float rstd = (float)(1.0 / Math.Sqrt(squares / n + eps));
            Span<float> sig = stackalloc float[Block];
            for (int c = 0; c < perGroup; c++)
            {
                var yc = ys.Slice(c * spatial, spatial);
                float scale = rstd * gamma.Data[c0 + c], shift = beta.Data[c0 + c];
                TensorPrimitives.Multiply(yc, scale, yc);
                TensorPrimitives.Add(yc, shift, yc);
                if (!silu) continue;
                for (int i = 0; i < spatial; i += Block)
                {
                    var chunk = yc.Slice(i, Math.Min(Block, spatial - i));
                    var s = sig[..chunk.Length];
                    TensorPrimitives.Sigmoid(chunk, s);
                    TensorPrimitives.Multiply(chunk, s, chunk);
                }
            }
        });
    }
}

/// <summary>Plain scalar GroupNorm (double throughout) that the fast one is tested against.</summary>
internal static class ReferenceGroupNorm
{
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, Span<float> y,
        int batch, int channels, int spatial, int groups, float eps = GroupNorm.DiffusersEps, bool silu = false)
    {
        int perGroup = channels / groups, n = perGroup * spatial;
        for (int b = 0; b < batch; b++)
        for (int grp = 0; grp < groups; grp++)
        {
            int offset = (b * channels + grp * perGroup) * spatial;
            double mean = 0;
            for (int i = 0; i < n; i++) mean += x[offset + i];
            mean /= n;
            double variance = 0;
            for (int i = 0; i < n; i++) variance += (x[offset + i] - mean) * (x[offset + i] - mean);
            variance /= n;
            double rstd = 1 / Math.Sqrt(variance + eps);
            for (int i = 0; i < n; i++)
            {
                int c = grp * perGroup + i / spatial;
                double v = (x[offset + i] - mean) * rstd * gamma[c] + beta[c];
                if (silu) v /= 1 + Math.Exp(-v);
                y[offset + i] = (float)v;
            }
        }
    }
}
