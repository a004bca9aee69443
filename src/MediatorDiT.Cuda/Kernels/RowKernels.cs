using ILGPU;

namespace MediatorDiT.Cuda.Kernels;

/// <summary>
/// The row kernels: one thread per row of d channels (a first, simple mapping; a warp per row comes with the device
/// run, docs/GPU.md). Their sums run in order, so they equal the CPU kernels, whose sums run by vector lanes, to
/// rounding.
/// </summary>
internal static class RowKernels
{
    /// <summary>
    /// LayerNorm without affine parameters and adaLN's modulation, as Nn.AdaLayerNormKernel.ForwardRow: per row of x
    /// (rows, d), xhat = (x - mean) rstd with rstd = 1 / sqrt(var + eps), y = xhat * scale + xhat + shift, with shift and
    /// scale (B, d) the row's image's; stats[2 row] = mean, stats[2 row + 1] = rstd. An empty xhat is not written.
    /// </summary>
    public static void AdaLayerNormForward(Index1D row, ArrayView<float> x, ArrayView<float> shift, ArrayView<float> scale, ArrayView<float> xhat,
        ArrayView<float> y, ArrayView<float> stats, int d, int rowsPerImage, float eps)
    {
        int r = row;
        long o = (long)r * d, c = (long)(r / rowsPerImage) * d;
        float sum = 0;
        for (int j = 0; j < d; j++) sum += x[o + j];
        float mu = sum / d;
        float var = 0;
        for (int j = 0; j < d; j++)
        {
            float dev = x[o + j] - mu;
            var += dev * dev;
        }
        float rs = 1f / MathF.Sqrt(var / d + eps);
        for (int j = 0; j < d; j++)
        {
            float h = (x[o + j] - mu) * rs;
            if (xhat.Length > 0) xhat[o + j] = h;
            y[o + j] = h * scale[c + j] + h + shift[c + j];
        }
        stats[2 * row] = mu;
        stats[2 * row + 1] = rs;
    }

    /// <summary>
    /// Row softmax in place, as Nn.SoftmaxRows.Forward: row += bias (when <paramref name="hasBias"/>; bias (n) shared by
    /// all rows), subtract the maximum, exponentiate (FastExp's bits), scale by 1 / sum; lse[row] = max + log(sum).
    /// </summary>
    public static void SoftmaxForward(Index1D row, ArrayView<float> x, ArrayView<float> bias, ArrayView<float> lse, int n, int hasBias)
    {
        int r = row;
        lse[row] = SoftmaxRowInPlace(x, (long)r * n, n, bias, 0, hasBias != 0);
    }

    /// <summary>
    /// The softmax of one row in place, shared by the row kernels: x[o..o+n) += bias[bo..bo+n) (when
    /// <paramref name="addBias"/>), subtract the maximum, exponentiate (FastExp's bits), scale by 1 / sum, as
    /// Nn.SoftmaxRows.Forward; returns the row's log-sum-exp, max + log(sum).
    /// </summary>
    public static float SoftmaxRowInPlace(ArrayView<float> x, long o, int n, ArrayView<float> bias, long bo, bool addBias)
    {
        float max = float.NegativeInfinity;
        for (int j = 0; j < n; j++)
        {
            float v = x[o + j];
            if (addBias)
            {
                v += bias[bo + j];
                x[o + j] = v;
            }
            max = MathF.Max(max, v);
        }
        float sum = 0;
        for (int j = 0; j < n; j++)
        {
            float e = DeviceMath.Exp(x[o + j] - max);
            x[o + j] = e;
            sum += e;
        }
        float inv = 1f / sum;
        for (int j = 0; j < n; j++) x[o + j] *= inv;
        return max + DeviceMath.Log(sum);
    }
}
