namespace MediatorDiT.Nn;

/// <summary>
/// 1-D F.interpolate(mode='linear', align_corners=True): x (P, L) -> y (P, OL). The ends map to the ends,
/// src = dst * (L - 1) / (OL - 1). Used to resize the row/column position biases when fine-tuning to
/// another resolution.
/// </summary>
internal static class LinearResize
{
    public static void Forward(ReadOnlySpan<float> x, Span<float> y, int planes, int inLength, int outLength)
    {
        float scale = outLength > 1 ? (float)(inLength - 1) / (outLength - 1) : 0f;
        for (int p = 0; p < planes; p++)
        {
            var xp = x.Slice(p * inLength, inLength);
            var yp = y.Slice(p * outLength, outLength);
            for (int d = 0; d < outLength; d++)
            {
                float src = scale * d;
                int i0 = (int)src;
                int i1 = i0 + (i0 < inLength - 1 ? 1 : 0);
                float l1 = src - i0;
                yp[d] = (1f - l1) * xp[i0] + l1 * xp[i1];
            }
        }
    }
}
