namespace MediatorDiT.Nn;

/// <summary>
/// Rearrangements between images and token rows for a stride-p, kernel-p convolution (PatchEmbed) and
/// for unpatchify. Tokens are in row-major grid order (gi * G + gj).
/// </summary>
internal static class Patchify
{
    /// <summary>
    /// x (C, H, W) -> cols (N, C*p*p) with column index c*p*p + pi*p + pj, matching a conv weight
    /// (D, C, p, p) flattened to (D, C*p*p).
    /// </summary>
    public static void ImageToPatches(ReadOnlySpan<float> x, Span<float> cols, int c, int h, int w, int p)
    {
        int gh = h / p, gw = w / p, k = c * p * p;
        for (int gi = 0; gi < gh; gi++)
        for (int gj = 0; gj < gw; gj++)
        {
            var row = cols.Slice((gi * gw + gj) * k, k);
            for (int ch = 0; ch < c; ch++)
            for (int pi = 0; pi < p; pi++)
                x.Slice(ch * h * w + (gi * p + pi) * w + gj * p, p).CopyTo(row.Slice((ch * p + pi) * p, p));
        }
    }

    /// <summary>The transpose of <see cref="ImageToPatches"/>: dcols (N, C*p*p) -> dx (C, H, W), overwritten.</summary>
    public static void PatchesToImage(ReadOnlySpan<float> cols, Span<float> x, int c, int h, int w, int p)
    {
        int gh = h / p, gw = w / p, k = c * p * p;
        for (int gi = 0; gi < gh; gi++)
        for (int gj = 0; gj < gw; gj++)
        {
            var row = cols.Slice((gi * gw + gj) * k, k);
            for (int ch = 0; ch < c; ch++)
            for (int pi = 0; pi < p; pi++)
                row.Slice((ch * p + pi) * p, p).CopyTo(x.Slice(ch * h * w + (gi * p + pi) * w + gj * p, p));
        }
    }

    /// <summary>
    /// unpatchify: tokens (N, p*p*C) laid out (pi, pj, c) -> image (C, G*p, G*p), keeping only the first
    /// <paramref name="keepChannels"/> channels (SiT drops the learned-sigma half).
    /// </summary>
    public static void Unpatchify(ReadOnlySpan<float> tokens, Span<float> img, int c, int grid, int p, int keepChannels)
    {
        int size = grid * p, k = p * p * c;
        for (int gi = 0; gi < grid; gi++)
        for (int gj = 0; gj < grid; gj++)
        {
            var row = tokens.Slice((gi * grid + gj) * k, k);
            for (int pi = 0; pi < p; pi++)
            for (int pj = 0; pj < p; pj++)
            for (int ch = 0; ch < keepChannels; ch++)
                img[ch * size * size + (gi * p + pi) * size + gj * p + pj] = row[(pi * p + pj) * c + ch];
        }
    }

    /// <summary>The transpose of <see cref="Unpatchify"/>: dimg -> dtokens (overwritten; dropped channels get 0).</summary>
    public static void UnpatchifyBackward(ReadOnlySpan<float> img, Span<float> tokens, int c, int grid, int p, int keepChannels)
    {
        int size = grid * p, k = p * p * c;
        tokens[..(grid * grid * k)].Clear();
        for (int gi = 0; gi < grid; gi++)
        for (int gj = 0; gj < grid; gj++)
        {
            var row = tokens.Slice((gi * grid + gj) * k, k);
            for (int pi = 0; pi < p; pi++)
            for (int pj = 0; pj < p; pj++)
            for (int ch = 0; ch < keepChannels; ch++)
                row[(pi * p + pj) * c + ch] = img[ch * size * size + (gi * p + pi) * size + gj * p + pj];
        }
    }
}
