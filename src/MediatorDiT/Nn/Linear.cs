using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using MediatorDiT.Tensors;

namespace MediatorDiT.Nn;

/// <summary>
/// nn.Linear on row blocks: y (rows, out) = x (rows, in) W^T + b, with W (out, in) as PyTorch stores it.
/// </summary>
internal static class Linear
{
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, Span<float> y,
        int rows, int inFeatures, int outFeatures)
    {
        for (int r = 0; r < rows; r++) bias.CopyTo(y.Slice(r * outFeatures, outFeatures));
        Gemm.Sgemm(false, true, rows, outFeatures, inFeatures, 1f, x, inFeatures, weight, inFeatures, 1f, y, outFeatures);
    }

    /// <summary>As <see cref="Forward(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, int, int, int)"/>
    /// with W^T from <paramref name="packedWeight"/> when <see cref="PackWeight"/> packed it (same result).</summary>
    internal static void Forward(ReadOnlySpan<float> x, PackedMatrix packedWeight, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias,
        Span<float> y, int rows, int inFeatures, int outFeatures)
    {
        for (int r = 0; r < rows; r++) bias.CopyTo(y.Slice(r * outFeatures, outFeatures));
        Gemm.Sgemm(false, true, rows, outFeatures, inFeatures, 1f, x, inFeatures, packedWeight, weight, inFeatures, 1f, y, outFeatures);
    }

    /// <summary>Packs W^T (in x out) once for forwards on blocks of about <paramref name="rowsPerBlock"/> rows; false: not worth it here.</summary>
    internal static bool PackWeight(PackedMatrix packed, ReadOnlySpan<float> weight, int inFeatures, int outFeatures, int rowsPerBlock) =>
        Gemm.TryPack(packed, true, outFeatures, inFeatures, weight, inFeatures, rowsPerBlock);

    /// <summary>
    /// dW += dy^T x, db += column sums of dy, and dx = dy W (overwritten, or added when
    /// <paramref name="accumulateDx"/>); pass an empty dx to skip the input gradient.
    /// </summary>
    public static void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> dy,
        Span<float> dWeight, Span<float> dBias, Span<float> dx, int rows, int inFeatures, int outFeatures,
        bool accumulateDx = false)
    {
        Gemm.Sgemm(true, false, outFeatures, inFeatures, rows, 1f, dy, outFeatures, x, inFeatures, 1f, dWeight, inFeatures);
        for (int r = 0; r < rows; r++)
            TensorPrimitives.Add(dBias, dy.Slice(r * outFeatures, outFeatures), dBias);
        if (!dx.IsEmpty)
            Gemm.Sgemm(false, false, rows, inFeatures, outFeatures, 1f, dy, outFeatures, weight, inFeatures,
                accumulateDx ? 1f : 0f, dx, inFeatures);
    }
}
