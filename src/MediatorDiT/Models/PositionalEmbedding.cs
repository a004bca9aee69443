namespace MediatorDiT.Models;

/// <summary>
/// The fixed 2-D sin-cos position embedding (MAE/DiT): for token (i, j) on a G x G grid the first D/2
/// channels encode the column j and the last D/2 the row i, each as [sin(pos*w_k), cos(pos*w_k)] with
/// w_k = 10000^(-k / (D/4)), computed in float64 as the official numpy code does.
/// </summary>
internal static class PositionalEmbedding
{
    /// <summary>Fills (G*G, D) row-major.</summary>
    public static void Fill2DSinCos(Span<float> dst, int dim, int grid)
    {
        if (dim % 4 != 0) throw new MediatorDiTException($"hidden_size {dim} must be divisible by 4 for the 2-D sin-cos position embedding.");
        int quarter = dim / 4;
        for (int i = 0; i < grid; i++)
        for (int j = 0; j < grid; j++)
        {
            var row = dst.Slice((i * grid + j) * dim, dim);
            Fill1D(row[..(dim / 2)], j, quarter);
            Fill1D(row[(dim / 2)..], i, quarter);
        }
    }

    private static void Fill1D(Span<float> dst, int pos, int quarter)
    {
        for (int k = 0; k < quarter; k++)
        {
            double omega = 1.0 / Math.Pow(10000.0, k / (double)quarter);
            double a = pos * omega;
            dst[k] = (float)Math.Sin(a);
            dst[quarter + k] = (float)Math.Cos(a);
        }
    }
}
