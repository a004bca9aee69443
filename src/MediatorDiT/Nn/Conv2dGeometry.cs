namespace MediatorDiT.Nn;

/// <summary>
/// The shape of a groups=1 nn.Conv2d: channels, kernel, stride and zero padding given per side, so
/// asymmetric padding such as diffusers' (left 0, right 1, top 0, bottom 1) before a stride-2 conv fits.
/// Weight (out, in, kh, kw) as PyTorch stores it.
/// </summary>
public readonly record struct Conv2dGeometry(
    int InChannels, int OutChannels, int KernelH, int KernelW,
    int StrideH = 1, int StrideW = 1, int PadTop = 0, int PadBottom = 0, int PadLeft = 0, int PadRight = 0)
{
    /// <summary>A square kernel with the same stride and padding on every side (PyTorch's int arguments).</summary>
    public static Conv2dGeometry Square(int inChannels, int outChannels, int kernel, int stride = 1, int padding = 0) =>
        new(inChannels, outChannels, kernel, kernel, stride, stride, padding, padding, padding, padding);

    /// <summary>Rows of the im2col matrix: in * kh * kw (the GEMM's inner dimension).</summary>
    public int PatchSize => InChannels * KernelH * KernelW;

    /// <summary>The weight shape [out, in, kh, kw], as PyTorch stores it.</summary>
    public int[] WeightShape => [OutChannels, InChannels, KernelH, KernelW];

    /// <summary>A 1x1, stride-1, unpadded conv: a plain matrix product over the pixels.</summary>
    public bool IsPointwise => KernelH == 1 && KernelW == 1 && StrideH == 1 && StrideW == 1 &&
                               PadTop == 0 && PadBottom == 0 && PadLeft == 0 && PadRight == 0;

    /// <summary>Output rows for an input of <paramref name="height"/> rows: (height + pads - kh) / stride + 1.</summary>
    /// <param name="height">Input rows.</param>
    public int OutputHeight(int height) => (height + PadTop + PadBottom - KernelH) / StrideH + 1;

    /// <summary>Output columns for an input of <paramref name="width"/> columns: (width + pads - kw) / stride + 1.</summary>
    /// <param name="width">Input columns.</param>
    public int OutputWidth(int width) => (width + PadLeft + PadRight - KernelW) / StrideW + 1;

    /// <summary>Multiply-accumulates of one image of the given input size.</summary>
    public long MultiplyAccumulates(int height, int width) =>
        (long)OutChannels * PatchSize * OutputHeight(height) * OutputWidth(width);

    /// <summary>Throws when the geometry is malformed or the input is smaller than the padded kernel.</summary>
    public void Validate(int height, int width)
    {
        if (InChannels <= 0 || OutChannels <= 0 || KernelH <= 0 || KernelW <= 0 || StrideH <= 0 || StrideW <= 0 ||
            PadTop < 0 || PadBottom < 0 || PadLeft < 0 || PadRight < 0)
            throw new ArgumentException($"invalid convolution geometry {this}.");
        if (height <= 0 || width <= 0 || height + PadTop + PadBottom < KernelH || width + PadLeft + PadRight < KernelW)
            throw new ArgumentException($"input {height}x{width} is too small for the convolution {this}.");
    }
}
