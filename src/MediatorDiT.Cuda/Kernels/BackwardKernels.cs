using ILGPU;

namespace MediatorDiT.Cuda.Kernels;

/// <summary>
/// The backward passes of the network's layers besides attention and the matrix products: adaLN, the gated residual,
/// SiLU, the row softmax, the linear layers' bias gradient, unpatchify and patchify, the label table. Per-image
/// modulation rows (shift, scale, gate) are read at image * modStride + j, so they can be column slices of the
/// (B, k D) modulation buffer (view offset to the slice's first column, modStride = k D). Sums over rows and images
/// are gathers, one thread per gradient element adding the terms in the CPU layers' order (no atomics): the CPU's
/// bits wherever the CPU adds them one by one.
/// </summary>
internal static class BackwardKernels
{
    /// <summary>
    /// LayerNorm's input gradient through adaLN's modulation, as Nn.AdaLayerNormKernel.BackwardRow, per row of g
    /// (rows, d): dxhat = g scale + g, dx = ((xhat (-mean(dxhat xhat)) + dxhat) + (-mean(dxhat))) rstd, overwritten, or
    /// when <paramref name="accumulate"/> is 1 added to <paramref name="addend"/> (dx itself, or the residual branch's
    /// gradient, which saves copying it into dx first). stats (rows, 2) as the forward writes it: (mean, rstd). With
    /// <paramref name="fromInput"/> 1, xhat holds the LayerNorm's input x and xhat is made again (<see cref="Xhat"/>).
    /// </summary>
    public static void AdaLayerNormInputGradient(Index1D row, ArrayView<float> g, ArrayView<float> xhat, ArrayView<float> scale,
        ArrayView<float> stats, ArrayView<float> addend, ArrayView<float> dx, int d, int rowsPerImage, int modStride, int accumulate, int fromInput)
    {
        int r = row;
        long o = (long)r * d, c = (long)(r / rowsPerImage) * modStride;
        float mean = stats[2 * r], rstd = stats[2 * r + 1];
        float sum = 0, dot = 0;
        for (int j = 0; j < d; j++)
        {
            float gs = g[o + j], dh = gs * scale[c + j] + gs;
            sum += dh;
            dot += dh * Xhat(xhat[o + j], fromInput, mean, rstd);
        }
        float meanDy = sum / d, meanDyX = dot / d;
        for (int j = 0; j < d; j++)
        {
            float gs = g[o + j], dh = gs * scale[c + j] + gs;
            float t = (Xhat(xhat[o + j], fromInput, mean, rstd) * -meanDyX + dh + -meanDy) * rstd;
            dx[o + j] = accumulate != 0 ? addend[o + j] + t : t;
        }
    }

    /// <summary>
    /// A LayerNorm's xhat in a backward: the stored value, or with <paramref name="fromInput"/> 1 made again from the
    /// input x as every forward makes it, (x - mean) rstd (a product only ever multiplied, never contracted into an
    /// add, so the stored bits on any device), which spares the forward writing xhat and the step keeping it.
    /// </summary>
    public static float Xhat(float stored, int fromInput, float mean, float rstd) => fromInput != 0 ? (stored - mean) * rstd : stored;

    /// <summary>
    /// adaLN's modulation gradients per (image, channel j): dShift += g and dScale = g xhat + dScale over the image's
    /// rows in order, as the CPU layer accumulates them row by row (same bits); xhat as in
    /// <see cref="AdaLayerNormInputGradient"/> (with <paramref name="fromInput"/> 1 made again from x and stats).
    /// </summary>
    public static void AdaLayerNormModulationGradient(Index1D index, ArrayView<float> g, ArrayView<float> xhat, ArrayView<float> stats,
        ArrayView<float> dShift, ArrayView<float> dScale, int d, int rowsPerImage, int modStride, int fromInput)
    {
        int image = index / d, j = index - image * d;
        long m = (long)image * modStride + j, first = (long)image * rowsPerImage * d + j;
        float sh = dShift[m], sc = dScale[m];
        int r = 0;
        // Four rows' loads in flight together (a thread per column has few threads), then the same sums in row order.
        for (; r + 4 <= rowsPerImage; r += 4)
        {
            long o0 = first + (long)r * d, o1 = o0 + d, o2 = o1 + d, o3 = o2 + d;
            float g0 = g[o0], g1 = g[o1], g2 = g[o2], g3 = g[o3];
            long row = (long)image * rowsPerImage + r;
            float x0 = Xhat(xhat[o0], fromInput, stats[2 * row], stats[2 * row + 1]), x1 = Xhat(xhat[o1], fromInput, stats[2 * row + 2], stats[2 * row + 3]);
            float x2 = Xhat(xhat[o2], fromInput, stats[2 * row + 4], stats[2 * row + 5]), x3 = Xhat(xhat[o3], fromInput, stats[2 * row + 6], stats[2 * row + 7]);
            sh += g0;
            sc = g0 * x0 + sc;
            sh += g1;
            sc = g1 * x1 + sc;
            sh += g2;
            sc = g2 * x2 + sc;
            sh += g3;
            sc = g3 * x3 + sc;
        }
        for (; r < rowsPerImage; r++)
        {
            long o = first + (long)r * d;
            float gs = g[o];
            sh += gs;
            long row = (long)image * rowsPerImage + r;
            sc = gs * Xhat(xhat[o], fromInput, stats[2 * row], stats[2 * row + 1]) + sc;
        }
        dShift[m] = sh;
        dScale[m] = sc;
    }

    /// <summary>The gated residual's branch gradient, per element of dy (rows, d): dBranch = dy gate (dBranch may be dy).</summary>
    public static void GatedResidualBranchGradient(Index1D i, ArrayView<float> dy, ArrayView<float> gate, ArrayView<float> dBranch,
        int d, int rowsPerImage, int modStride)
    {
        int row = i / d, j = i - row * d;
        dBranch[i] = dy[i] * gate[(long)(row / rowsPerImage) * modStride + j];
    }

    /// <summary>
    /// The gated residual's gate gradient per (image, channel j): dGate = dy (branch + bias) + dGate over the image's
    /// rows in order (the branch before its bias (d), as the forward reads it).
    /// </summary>
    public static void GatedResidualGateGradient(Index1D index, ArrayView<float> dy, ArrayView<float> branch, ArrayView<float> bias, ArrayView<float> dGate,
        int d, int rowsPerImage, int modStride)
    {
        int image = index / d, j = index - image * d;
        long m = (long)image * modStride + j, first = (long)image * rowsPerImage * d + j;
        float acc = dGate[m], b = bias[j];
        int r = 0;
        // Four rows' loads in flight together (a thread per column has few threads), then the same sums in row order.
        for (; r + 4 <= rowsPerImage; r += 4)
        {
            long o0 = first + (long)r * d, o1 = o0 + d, o2 = o1 + d, o3 = o2 + d;
            float a0 = dy[o0], a1 = dy[o1], a2 = dy[o2], a3 = dy[o3];
            float b0 = branch[o0] + b, b1 = branch[o1] + b, b2 = branch[o2] + b, b3 = branch[o3] + b;
            acc = a0 * b0 + acc;
            acc = a1 * b1 + acc;
            acc = a2 * b2 + acc;
            acc = a3 * b3 + acc;
        }
        for (; r < rowsPerImage; r++)
        {
            long o = first + (long)r * d;
            acc = dy[o] * (branch[o] + b) + acc;
        }
        dGate[m] = acc;
    }

    /// <summary>dx = dy s (1 + x (1 - s)) with s = sigmoid(x), as Nn.Silu.Backward (dx may be dy, not x).</summary>
    public static void SiluBackward(Index1D i, ArrayView<float> x, ArrayView<float> dy, ArrayView<float> dx)
    {
        float v = x[i], s = 1f / (1f + DeviceMath.Exp(-v));
        dx[i] = dy[i] * s * (1f + v * (1f - s));
    }

    /// <summary>
    /// Row softmax backward in place, per row of n: dp = p (dp - sum(p dp)), as Nn.SoftmaxRows.Backward. With a
    /// shared bias added before the softmax its gradient is the result's column sums (<see cref="ColumnSums"/>).
    /// </summary>
    public static void SoftmaxBackward(Index1D row, ArrayView<float> p, ArrayView<float> dp, int n)
    {
        long o = (long)(int)row * n;
        float delta = 0;
        for (int j = 0; j < n; j++) delta += p[o + j] * dp[o + j];
        for (int j = 0; j < n; j++) dp[o + j] = p[o + j] * (dp[o + j] - delta);
    }

    /// <summary>
    /// dst (cols) += the column sums of x (rows, cols), row by row in order: a linear layer's bias gradient (as
    /// Nn.Linear.Backward adds it, same bits), a shared softmax bias's, the patch embedding's bias's.
    /// </summary>
    public static void ColumnSums(Index1D j, ArrayView<float> x, ArrayView<float> dst, int rows, int cols)
    {
        float acc = dst[j];
        for (int r = 0; r < rows; r++) acc += x[(long)r * cols + j];
        dst[j] = acc;
    }

    /// <summary>
    /// A bias gradient's first step: partials (chunks, cols) get x's (rows, cols) column sums over each chunk of
    /// chunkRows rows, in row order. Thread t = chunk * cols + column, so a warp reads a row's neighbouring columns.
    /// </summary>
    public static void ColumnPartials(Index1D t, ArrayView<float> x, ArrayView<float> partials, int rows, int cols, int chunkRows)
    {
        int chunk = t / cols, j = t - chunk * cols, r1 = Math.Min(rows, (chunk + 1) * chunkRows);
        float acc = 0;
        for (int r = chunk * chunkRows; r < r1; r++) acc += x[(long)r * cols + j];
        partials[t] = acc;
    }

    /// <summary>The bias gradient's second step: dst (cols) += the partials' (chunks, cols) columns summed over the chunks in order.</summary>
    public static void AddColumnPartials(Index1D j, ArrayView<float> partials, ArrayView<float> dst, int cols, int chunks)
    {
        float acc = 0;
        for (int c = 0; c < chunks; c++) acc += partials[(long)c * cols + j];
        dst[j] += acc;
    }

    /// <summary>
    /// <see cref="GatedResidualBranchGradient"/> written only as bf16 (dBranch16, the operand of the branch's linear
    /// backward), with the branch's bias gradient partials (<see cref="ColumnPartials"/> of the fp32 values, which are
    /// not stored) from the same pass. Thread t = chunk * d + column.
    /// </summary>
    public static void GatedResidualBranchGradientBf16Columns(Index1D t, ArrayView<float> dy, ArrayView<float> gate, ArrayView<ushort> dBranch16,
        ArrayView<float> partials, int d, int rowsPerImage, int modStride, int rows, int chunkRows)
    {
        int chunk = t / d, j = t - chunk * d, r1 = Math.Min(rows, (chunk + 1) * chunkRows);
        float acc = 0;
        for (int r = chunk * chunkRows; r < r1; r++)
        {
            long i = (long)r * d + j;
            float g = dy[i] * gate[(long)(r / rowsPerImage) * modStride + j];
            dBranch16[i] = Bf16.Round(g);
            acc += g;
        }
        partials[t] = acc;
    }

    /// <summary>
    /// The transpose of unpatchify (Nn.Patchify.UnpatchifyBackward) per element of dTokens (B*N, p p C) laid out
    /// (pi, pj, c): the image gradient dImage (B, keep, G p, G p) at the pixel it was written to; the channels
    /// unpatchify dropped (c >= keep) get 0.
    /// </summary>
    public static void UnpatchifyBackward(Index1D index, ArrayView<float> dImage, ArrayView<float> dTokens, int channels, int grid, int patch, int keep)
    {
        int k = patch * patch * channels, col = index % k, token = index / k, n = grid * grid, b = token / n, t = token - b * n;
        int ch = col % channels, pp = col / channels, pi = pp / patch, pj = pp - pi * patch, gi = t / grid, gj = t - gi * grid;
        int size = grid * patch;
        dTokens[index] = ch < keep ? dImage[(((long)b * keep + ch) * size + gi * patch + pi) * size + gj * patch + pj] : 0f;
    }

    /// <summary>
    /// The transpose of the patch embedding's im2col (Nn.Patchify.PatchesToImage) per element of dx (B, C, H, W): the
    /// column gradient dCols (B*N, C p p) at (token, c p p + pi p + pj).
    /// </summary>
    public static void PatchesToImage(Index1D index, ArrayView<float> dCols, ArrayView<float> dx, int channels, int height, int width, int patch)
    {
        int x = index % width, rest = index / width, y = rest % height, plane = rest / height, ch = plane % channels, b = plane / channels;
        int gw = width / patch, n = height / patch * gw, gi = y / patch, pi = y - gi * patch, gj = x / patch, pj = x - gj * patch;
        dx[index] = dCols[((long)b * n + gi * gw + gj) * (channels * patch * patch) + (ch * patch + pi) * patch + pj];
    }

    /// <summary>
    /// The label table's gradient (classes (+ 1 null), d) per element: the output gradient rows dOut (B, d) of the
    /// images whose label is this row, added in image order (the CPU's scatter-add as a gather, same bits).
    /// </summary>
    public static void LabelTableGradient(Index1D index, ArrayView<int> labels, ArrayView<float> dOut, ArrayView<float> dTable, int d, int images)
    {
        int row = index / d, j = index - row * d;
        float acc = dTable[index];
        for (int b = 0; b < images; b++)
            if (labels[b] == row) acc += dOut[(long)b * d + j];
        dTable[index] = acc;
    }
}
