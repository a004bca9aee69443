using ILGPU;

namespace MediatorDiT.Cuda.Kernels;

/// <summary>
/// The gradients of mediator attention's position biases from the logit gradients dS1 (B, H, n, N) and dS2 (B, H, N, n),
/// as MediatorAttention.AccumulateBiasGradients takes them: the sum over images, the per-axis biases' row and column
/// sums (Nn.MediatorBiases), the transpose of bias2's resized part and the bilinear resize's transpose
/// (Nn.BilinearResize). Every scatter of the CPU code is a gather here, one thread per gradient element, adding its
/// terms in the CPU loops' order, so the results are the CPU's bits.
/// </summary>
internal static class MediatorBiasBackwardKernels
{
    /// <summary>dst (length) = src (images, length) summed over the images in order, from zero.</summary>
    public static void SumOverImages(Index1D index, ArrayView<float> src, ArrayView<float> dst, int length, int images)
    {
        float acc = 0;
        for (int b = 0; b < images; b++) acc += src[(long)b * length + index];
        dst[index] = acc;
    }

    /// <summary>dst (count, cols, rows) = the transpose of each of src's count (rows, cols) matrices; one thread per dst element.</summary>
    public static void Transpose(Index1D index, ArrayView<float> src, ArrayView<float> dst, int rows, int cols)
    {
        int r = index % rows, rest = index / rows, k = rest % cols, c = rest / cols;
        dst[index] = src[((long)c * rows + r) * cols + k];
    }

    /// <summary>
    /// dx (planes, h, w) += the bilinear resize's transpose applied to dy (planes, oh, ow), per element of dx: the
    /// output taps (tapIndex (2 oh): i0, i1 per output row, tapWeight: w0, w1; likewise the columns) that read it, in
    /// the output order and, per output, the four corners' order of Nn.BilinearResize.BackwardAccumulate.
    /// </summary>
    public static void BilinearResizeBackward(Index1D index, ArrayView<float> dy, ArrayView<float> dx, ArrayView<int> rowTaps,
        ArrayView<float> rowWeights, ArrayView<int> colTaps, ArrayView<float> colWeights, int h, int w, int oh, int ow)
    {
        int x = index % w, rest = index / w, y = rest % h, p = rest / h;
        float acc = dx[index];
        for (int i = 0; i < oh; i++)
        {
            int a0 = rowTaps[2 * i], a1 = rowTaps[2 * i + 1];
            if (y != a0 && y != a1) continue;
            float wa0 = rowWeights[2 * i], wa1 = rowWeights[2 * i + 1];
            for (int j = 0; j < ow; j++)
            {
                int b0 = colTaps[2 * j], b1 = colTaps[2 * j + 1];
                if (x != b0 && x != b1) continue;
                float wb0 = colWeights[2 * j], wb1 = colWeights[2 * j + 1];
                float g = dy[((long)p * oh + i) * ow + j];
                if (y == a0 && x == b0) acc += wa0 * wb0 * g;
                if (y == a0 && x == b1) acc += wa0 * wb1 * g;
                if (y == a1 && x == b0) acc += wa1 * wb0 * g;
                if (y == a1 && x == b1) acc += wa1 * wb1 * g;
            }
        }
        dx[index] = acc;
    }

    /// <summary>dRow (count, h) += the sum over j of dMaps (count, h, w), in grid order.</summary>
    public static void AxisRowGradients(Index1D index, ArrayView<float> dMaps, ArrayView<float> dRow, int w)
    {
        float acc = dRow[index];
        for (int j = 0; j < w; j++) acc += dMaps[(long)(int)index * w + j];
        dRow[index] = acc;
    }

    /// <summary>dCol (count, w) += the sum over i of dMaps (count, h, w), in grid order.</summary>
    public static void AxisColumnGradients(Index1D index, ArrayView<float> dMaps, ArrayView<float> dCol, int h, int w)
    {
        int j = index % w, c = index / w;
        float acc = dCol[index];
        for (int i = 0; i < h; i++) acc += dMaps[((long)c * h + i) * w + j];
        dCol[index] = acc;
    }

    /// <summary>dRow (heads, h, n) += the sum over j of dMaps (heads, h, w, n).</summary>
    public static void AxisRowGradientsPerMediator(Index1D index, ArrayView<float> dMaps, ArrayView<float> dRow, int w, int n)
    {
        int m = index % n, hi = index / n;
        float acc = dRow[index];
        for (int j = 0; j < w; j++) acc += dMaps[((long)hi * w + j) * n + m];
        dRow[index] = acc;
    }

    /// <summary>dCol (heads, w, n) += the sum over i of dMaps (heads, h, w, n).</summary>
    public static void AxisColumnGradientsPerMediator(Index1D index, ArrayView<float> dMaps, ArrayView<float> dCol, int h, int w, int n)
    {
        int m = index % n, rest = index / n, j = rest % w, hh = rest / w;
        float acc = dCol[index];
        for (int i = 0; i < h; i++) acc += dMaps[(((long)hh * h + i) * w + j) * n + m];
        dCol[index] = acc;
    }
}
