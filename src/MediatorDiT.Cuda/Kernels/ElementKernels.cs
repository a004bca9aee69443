using ILGPU;
using MediatorDiT.Cuda.Blas;
using MediatorDiT.Nn;

namespace MediatorDiT.Cuda.Kernels;

/// <summary>
/// The element-wise kernels of the network, one thread per element. Each performs the IEEE operations of its CPU
/// twin in Nn in the same order (GELU's sigmoid form with FastExp, the gated residual's multiply then add), so on
/// ILGPU's CPU accelerator the results are the same bits; SiLU uses the device's exp and differs from TensorPrimitives' by rounding only.
/// </summary>
internal static class ElementKernels
{
    private const float MinusTwoBetaKappa = -2f * Gelu.Beta * Gelu.Kappa;
    private const float MinusTwoBeta = -2f * Gelu.Beta;

    // GELU reads fc1's product before its bias, x (rows, width), and adds the bias row (width) as it reads each value:
    // fl(x + b), the value fc1's bias rows plus the product would have stored (the bias is then never written). x is
    // that product's output as stored: float32 (TX float), or bf16 (TX ushort) where bf16 products write theirs in bf16;
    // likewise the upstream gradient dy of the backward (fc2's input gradient).

    /// <summary>y = gelu(x + bias) (tanh approximation) as v sigmoid(2z): Nn.Gelu's vector path.</summary>
    public static void GeluForward<TX, TW>(Index1D i, ArrayView<TX> x, ArrayView<float> bias, ArrayView<float> y, int width)
        where TX : unmanaged where TW : struct, IOperandWidening<TX> =>
        y[i] = GeluOf(default(TW).Widen(x[i]) + bias[i % width]);

    /// <summary>
    /// y16 = bf16(gelu(x + bias)) over n elements, <see cref="ElementsPerThread"/> (loads first): <see cref="GeluForward"/>
    /// of fc1's bf16 output, written only as the bf16 operand of the product that reads it.
    /// </summary>
    public static void GeluForwardBf16(Index1D t, ArrayView<ushort> x, ArrayView<float> bias, ArrayView<ushort> y16, int width, int n)
    {
        int stride = ElementsPerThread.Threads(n), i0 = t, i1 = i0 + stride, i2 = i1 + stride, i3 = i2 + stride;
        float v0 = i0 < n ? Bf16.Widen(x[i0]) : 0f, v1 = i1 < n ? Bf16.Widen(x[i1]) : 0f, v2 = i2 < n ? Bf16.Widen(x[i2]) : 0f, v3 = i3 < n ? Bf16.Widen(x[i3]) : 0f;
        if (i0 < n) y16[i0] = Bf16.Round(GeluOf(v0 + bias[i0 % width]));
        if (i1 < n) y16[i1] = Bf16.Round(GeluOf(v1 + bias[i1 % width]));
        if (i2 < n) y16[i2] = Bf16.Round(GeluOf(v2 + bias[i2 % width]));
        if (i3 < n) y16[i3] = Bf16.Round(GeluOf(v3 + bias[i3 % width]));
    }

    /// <summary>dx = dy gelu'(x + bias): Nn.Gelu's vector backward (dx may be dy when both are float32).</summary>
    public static void GeluBackward<TX, TW>(Index1D i, ArrayView<TX> x, ArrayView<float> bias, ArrayView<TX> dy, ArrayView<float> dx, int width)
        where TX : unmanaged where TW : struct, IOperandWidening<TX> =>
        dx[i] = GeluGradient(default(TW).Widen(x[i]) + bias[i % width], default(TW).Widen(dy[i]));

    /// <summary>
    /// <see cref="GeluBackward"/> of fc1's bf16 output and fc2's bf16 input gradient, written only as bf16 (dx16, fc1's
    /// backward operand; it may be dy16, each value read before its own store), with fc1's bias gradient partials
    /// (BackwardKernels.ColumnPartials of the fp32 dx, which is not stored) from the same pass. Thread t = chunk * width
    /// + column, over chunkRows rows of x (rows, width).
    /// </summary>
    public static void GeluBackwardBf16Columns(Index1D t, ArrayView<ushort> x, ArrayView<float> bias, ArrayView<ushort> dy, ArrayView<ushort> dx16,
        ArrayView<float> partials, int width, int rows, int chunkRows)
    {
        int chunk = t / width, j = t - chunk * width, r1 = Math.Min(rows, (chunk + 1) * chunkRows);
        float b = bias[j], acc = 0;
        for (int r = chunk * chunkRows; r < r1; r++)
        {
            long i = (long)r * width + j;
            float g = GeluGradient(Bf16.Widen(x[i]) + b, Bf16.Widen(dy[i]));
            dx16[i] = Bf16.Round(g);
            acc += g;
        }
        partials[t] = acc;
    }

    private static float GeluOf(float v)
    {
        float minusTwoZ = v * MathF.FusedMultiplyAdd(MinusTwoBetaKappa, v * v, MinusTwoBeta);
        return v / (1f + DeviceMath.Exp(minusTwoZ));
    }

    private static float GeluGradient(float v, float dy)
    {
        float minusTwoZ = v * MathF.FusedMultiplyAdd(MinusTwoBetaKappa, v * v, MinusTwoBeta);
        float sg = 1f / (1f + DeviceMath.Exp(minusTwoZ));
        float slope = sg * (1f - sg) * (2f * Gelu.Beta) * MathF.FusedMultiplyAdd(3f * Gelu.Kappa, v * v, 1f);
        return dy * MathF.FusedMultiplyAdd(v, slope, sg);
    }

    /// <summary>y = x sigmoid(x).</summary>
    public static void SiluForward(Index1D i, ArrayView<float> x, ArrayView<float> y)
    {
        float v = x[i];
        y[i] = v * (1f / (1f + DeviceMath.Exp(-v)));
    }

    /// <summary>
    /// The adaLN-Zero gated residual over rows of d channels: dst = (branch + bias) * gate + src, with gate (B, d) the
    /// row's image's (rows of one image are <paramref name="rowsPerImage"/> consecutive rows). The branch is its linear
    /// layer's product before the bias (d), which is added here as it is read. dst may be src.
    /// </summary>
    public static void GatedResidualForward(Index1D i, ArrayView<float> src, ArrayView<float> branch, ArrayView<float> bias, ArrayView<float> gate,
        ArrayView<float> dst, int d, int rowsPerImage)
    {
        int row = i / d, j = i - row * d;
        dst[i] = (branch[i] + bias[j]) * gate[(row / rowsPerImage) * d + j] + src[i];
    }
}
