using MediatorDiT.Diffusion;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Sampling;

/// <summary>
/// The exact prediction for data x1 ~ N(Mean, Std^2) per element: x_t ~ N(a m, v) with v = a^2 s^2 + b^2
/// (a = alpha_t, b = sigma_t), E[x1 | x_t] = m + a s^2 (x_t - a m) / v, E[x0 | x_t] = b (x_t - a m) / v.
/// Velocity d_alpha E[x1] + d_sigma E[x0], score -(x_t - a m) / v, noise E[x0]. The probability-flow ODE
/// then maps x(t0) to a(t) m + sqrt(v(t) / v(t0)) (x(t0) - a(t0) m) exactly (see <see cref="FlowMap"/>).
/// </summary>
internal sealed class GaussianDataField(Transport transport, double mean, double std) : IModelFunction
{
    public int Calls { get; private set; }

    public int RowsPerSample => 1;

    public Tensor Evaluate(Tensor x, ReadOnlySpan<float> t, ReadOnlySpan<int> y)
    {
        Calls++;
        var result = new Tensor(x.Shape);
        int per = x.Length / x.Dim(0);
        for (int r = 0; r < x.Dim(0); r++)
        {
            var (a, da) = Alpha(t[r]);
            var (b, db) = Sigma(t[r]);
            double v = a * a * std * std + b * b;
            for (int i = r * per; i < (r + 1) * per; i++)
            {
                double centred = x.Span[i] - a * mean;
                double data = mean + a * std * std * centred / v, noise = b * centred / v;
                result.Span[i] = (float)(transport.Prediction switch
                {
                    PredictionType.Velocity => da * data + db * noise,
                    PredictionType.Score => -centred / v,
                    _ => noise,
                });
            }
        }
        return result;
    }

    /// <summary>The exact ODE solution at t1 from x at t0.</summary>
    public Tensor FlowMap(Tensor x, double t0, double t1)
    {
        double a0 = Alpha(t0).A, a1 = Alpha(t1).A, b0 = Sigma(t0).B, b1 = Sigma(t1).B;
        double scale = Math.Sqrt((a1 * a1 * std * std + b1 * b1) / (a0 * a0 * std * std + b0 * b0));
        var result = new Tensor(x.Shape);
        for (int i = 0; i < x.Length; i++) result.Span[i] = (float)(a1 * mean + scale * (x.Span[i] - a0 * mean));
        return result;
    }

    // In double, independent of the transport's float32 coefficients.
    private (double A, double DA) Alpha(double t) => transport.PathType switch
    {
        PathType.Linear => (t, 1),
        PathType.GVP => (Math.Sin(Math.PI * t / 2), Math.PI / 2 * Math.Cos(Math.PI * t / 2)),
        _ => (Math.Exp(Lmc(t)), Math.Exp(Lmc(t)) * DLmc(t)),
    };

    private (double B, double DB) Sigma(double t)
    {
        switch (transport.PathType)
        {
            case PathType.Linear: return (1 - t, -1);
            case PathType.GVP: return (Math.Cos(Math.PI * t / 2), -Math.PI / 2 * Math.Sin(Math.PI * t / 2));
            default:
                double a2 = Math.Exp(2 * Lmc(t)), s = Math.Sqrt(1 - a2);
                return (s, -a2 * DLmc(t) / s);
        }
    }

    private static double Lmc(double t) => -0.25 * (1 - t) * (1 - t) * 19.9 - 0.5 * (1 - t) * 0.1;
    private static double DLmc(double t) => 0.5 * (1 - t) * 19.9 + 0.05;

    /// <summary>A one-model ladder over this field, samples (C, H, W).</summary>
    public ModelLadder Ladder(int channels = 4, int size = 8) => new([this], [0.0], 10, [channels, size, size]);
}
