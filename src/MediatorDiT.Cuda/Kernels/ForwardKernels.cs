using ILGPU;

namespace MediatorDiT.Cuda.Kernels;

/// <summary>
/// The network's forward kernels outside the blocks' attention, one thread per output element, each the device twin of
/// a CPU routine (named on each kernel) with the same operations in the same order: patchify, bias rows, the position
/// table, timestep frequencies, the label table, the modulation split, unpatchify and guidance.
/// </summary>
internal static class ForwardKernels
{
    /// <summary>
    /// Nn.Patchify.ImageToPatches for a batch: x (B, C, S, S) -> cols (B*N, C*p*p), column c*p*p + pi*p + pj of token
    /// gi*G + gj = x[c, gi*p + pi, gj*p + pj] (the conv weight (D, C, p, p) flattened to (D, C*p*p) matches).
    /// </summary>
    public static void Patchify(Index1D i, ArrayView<float> x, ArrayView<float> cols, PatchGeometry g)
    {
        int k = g.Channels * g.Patch * g.Patch, n = g.Grid * g.Grid, size = g.Grid * g.Patch;
        int col = i % k, rest = i / k, token = rest % n, b = rest / n;
        int ch = col / (g.Patch * g.Patch), pi = col / g.Patch % g.Patch, pj = col % g.Patch;
        int gi = token / g.Grid, gj = token % g.Grid;
        cols[i] = x[(((long)b * g.Channels + ch) * size + gi * g.Patch + pi) * size + gj * g.Patch + pj];
    }

    /// <summary>
    /// Models.SiTModel's unpatchify (Nn.Patchify.Unpatchify per image): tokens (B*N, p*p*C) laid out (pi, pj, c) ->
    /// image (B, keep, S, S), keeping the first <see cref="PatchGeometry.Keep"/> of the C channels (the learn_sigma split).
    /// </summary>
    public static void Unpatchify(Index1D i, ArrayView<float> tokens, ArrayView<float> image, PatchGeometry g)
    {
        int size = g.Grid * g.Patch, n = g.Grid * g.Grid, k = g.Patch * g.Patch * g.Channels;
        int xx = i % size, rest = i / size, yy = rest % size;
        rest /= size;
        int ch = rest % g.Keep, b = rest / g.Keep;
        int token = yy / g.Patch * g.Grid + xx / g.Patch, within = yy % g.Patch * g.Patch + xx % g.Patch;
        image[i] = tokens[((long)b * n + token) * k + within * g.Channels + ch];
    }

    /// <summary>y (rows, width) = the bias row (width) repeated: the start of Nn.Linear.Forward (the product adds onto it).</summary>
    public static void RepeatRow(Index1D i, ArrayView<float> bias, ArrayView<float> y, int width) => y[i] = bias[i % width];

    /// <summary>x (rows, period) += table (period) element-wise per block of <paramref name="period"/> floats: the position table's add.</summary>
    public static void AddRepeated(Index1D i, ArrayView<float> x, ArrayView<float> table, int period) => x[i] = x[i] + table[i % period];

    /// <summary>
    /// Models.LabelEmbedder.Forward plus the timestep embedding: c (B, D) = table[y_b] + temb (labels checked on the host).
    /// </summary>
    public static void LabelEmbed(Index1D i, ArrayView<float> table, ArrayView<int> labels, ArrayView<float> temb, ArrayView<float> c, int d)
    {
        int b = i / d, j = i % d;
        c[i] = table[(long)labels[b] * d + j] + temb[i];
    }

    /// <summary>
    /// chunks (K, B, D) = the K column blocks of the adaLN modulation mod (B, K*D): chunk k of image b is
    /// mod[b, k*D .. (k+1)*D), so each shift, scale and gate is a dense (B, D) view for the row kernels.
    /// </summary>
    public static void SplitModulation(Index1D i, ArrayView<float> mod, ArrayView<float> chunks, int batch, int d, int count)
    {
        int j = i % d, rest = i / d, b = rest % batch, chunk = rest / batch;
        chunks[i] = mod[((long)b * count + chunk) * d + j];
    }

    /// <summary>
    /// Nn.GuidanceKernel.Combine on each sample's guided channels: output (2 half, per) holds the conditional rows then
    /// the unconditional ones; for sample s and element k &lt; guided, g = u + scale (c - u) goes to both rows.
    /// </summary>
    public static void Guidance(Index1D i, ArrayView<float> output, int half, int per, int guided, float scale)
    {
        int s = i / guided, k = i % guided;
        long ci = (long)s * per + k, ui = (long)(half + s) * per + k;
        float c = output[ci], u = output[ui];
        float g = u + scale * (c - u);
        output[ci] = g;
        output[ui] = g;
    }
}

/// <summary>The patch geometry: C channels, p x p patches on a G x G token grid (image side G p); Keep of the C channels unpatchified.</summary>
internal readonly record struct PatchGeometry(int Channels, int Patch, int Grid, int Keep);
