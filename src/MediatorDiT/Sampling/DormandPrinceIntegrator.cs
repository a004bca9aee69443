using MediatorDiT.Tensors;

namespace MediatorDiT.Sampling;

/// <summary>
/// Adaptive Dormand-Prince 5(4) with first-same-as-last, error control and step-size selection as in
/// torchdiffeq's dopri5: error ratio = RMS over all elements of err / (atol + rtol max(|y0|, |y1|)),
/// step factor min(10, max(0.9 ratio^(-1/5), 0.2)) (never below 1 after an accepted step), and Hairer's
/// initial step. Unlike torchdiffeq, steps are cut to land exactly on each requested time, so a state
/// there is integrated, not interpolated, and the function may change between requested times.
/// </summary>
internal sealed class DormandPrinceIntegrator
{
    // Butcher tableau (c, a) and the 5th-order weights b; E = b - b* (4th-order) for the error estimate.
    private static readonly double[] C = [0, 1.0 / 5, 3.0 / 10, 4.0 / 5, 8.0 / 9, 1, 1];
    private static readonly double[][] A =
    [
        [],
        [1.0 / 5],
        [3.0 / 40, 9.0 / 40],
        [44.0 / 45, -56.0 / 15, 32.0 / 9],
        [19372.0 / 6561, -25360.0 / 2187, 64448.0 / 6561, -212.0 / 729],
        [9017.0 / 3168, -355.0 / 33, 46732.0 / 5247, 49.0 / 176, -5103.0 / 18656],
        [35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84],
    ];
    private static readonly double[] E =
    [
        35.0 / 384 - 5179.0 / 57600, 0, 500.0 / 1113 - 7571.0 / 16695, 125.0 / 192 - 393.0 / 640,
        -2187.0 / 6784 + 92097.0 / 339200, 11.0 / 84 - 187.0 / 2100, -1.0 / 40,
    ];

    private const double Safety = 0.9, MaxFactor = 10, MinFactor = 0.2, Order = 5;

    private readonly Func<Tensor, double, Tensor> _f;
    private readonly double _atol, _rtol;
    private readonly int _maxEvaluations;
    private Tensor? _k1;
    private double _h = double.NaN;

    public int Evaluations { get; private set; }

    /// <param name="f">dy/dt at (y, t); the result is not modified.</param>
    /// <param name="atol">Absolute error tolerance.</param>
    /// <param name="rtol">Relative error tolerance.</param>
    /// <param name="maxEvaluations">Calls of <paramref name="f"/> after which integration fails.</param>
    public DormandPrinceIntegrator(Func<Tensor, double, Tensor> f, double atol, double rtol, int maxEvaluations)
    {
        _f = f;
        _atol = atol;
        _rtol = rtol;
        _maxEvaluations = maxEvaluations;
    }

    /// <summary>Forgets the derivative carried over from the last step (the function changed).</summary>
    public void Invalidate() => _k1 = null;

    /// <summary>Integrates y from t to tEnd &gt; t and returns the new state.</summary>
    public Tensor Advance(Tensor y, double t, double tEnd)
    {
        _k1 ??= Call(y, t);
        if (double.IsNaN(_h)) _h = InitialStep(y, t, _k1);
        var k = new Tensor[7];
        var stage = new Tensor(y.Shape);
        var y1 = new Tensor(y.Shape);
        var ys = y.Span;
        while (t < tEnd)
        {
            double h = Math.Min(_h, tEnd - t);
            bool clipped = h >= tEnd - t;
            if (!(h > 0) || t + h == t)
                throw new MediatorDiTException($"dopri5 step size fell to {h:G3} at t = {t:G6}; the ODE is too stiff for atol {_atol} and rtol {_rtol}.");
            k[0] = _k1;
            for (int s = 1; s < 7; s++)
            {
                var target = s == 6 ? y1 : stage;
                Combine(ys, h, A[s], k, s, target.Span);
                k[s] = Call(target, s == 6 && clipped ? tEnd : t + C[s] * h);
            }
            double ratio = ErrorRatio(ys, y1.Span, h, k);
            bool accepted = ratio <= 1;
            double hNext = NextStep(h, ratio);
            if (accepted)
            {
                t = clipped ? tEnd : t + h;
                y = y1.Clone();
                ys = y.Span;
                _k1 = k[6];
                // A step cut short to land on tEnd says little against the earlier, longer proposal.
                _h = clipped ? Math.Max(hNext, Math.Min(_h, ratio == 0 ? _h : h * Safety * Math.Pow(ratio, -1 / Order))) : hNext;
            }
            else
            {
                _h = hNext;
            }
        }
        return y;
    }

    private Tensor Call(Tensor y, double t)
    {
        if (Evaluations >= _maxEvaluations)
            throw new MediatorDiTException($"dopri5 needed more than {_maxEvaluations} evaluations; loosen atol/rtol or raise the evaluation limit.");
        Evaluations++;
        return _f(y, t);
    }

    /// <summary>target = y + h * sum_j a[j] k[j] over the first <paramref name="count"/> stages.</summary>
    private static void Combine(ReadOnlySpan<float> y, double h, double[] a, Tensor[] k, int count, Span<float> target)
    {
        y.CopyTo(target);
        for (int j = 0; j < count; j++)
        {
            if (a[j] == 0) continue;
            float w = (float)(h * a[j]);
            var kj = k[j].Span;
            for (int e = 0; e < target.Length; e++) target[e] += w * kj[e];
        }
    }

    private double ErrorRatio(ReadOnlySpan<float> y0, ReadOnlySpan<float> y1, double h, Tensor[] k)
    {
        double sum = 0;
        for (int e = 0; e < y0.Length; e++)
        {
            double err = 0;
            for (int j = 0; j < 7; j++)
                if (E[j] != 0) err += E[j] * k[j].Span[e];
            err *= h;
            double tol = _atol + _rtol * Math.Max(Math.Abs(y0[e]), Math.Abs(y1[e]));
            sum += err / tol * (err / tol);
        }
        return Math.Sqrt(sum / y0.Length);
    }

    private static double NextStep(double h, double ratio)
    {
        if (ratio == 0) return h * MaxFactor;
        double minFactor = ratio < 1 ? 1 : MinFactor;
        return h * Math.Min(MaxFactor, Math.Max(Safety / Math.Pow(ratio, 1 / Order), minFactor));
    }

    /// <summary>Hairer, Norsett and Wanner's starting step for a 4th-order error estimate (one extra evaluation).</summary>
    private double InitialStep(Tensor y0, double t0, Tensor f0)
    {
        var ys = y0.Span;
        var fs = f0.Span;
        double d0 = 0, d1 = 0;
        for (int e = 0; e < ys.Length; e++)
        {
            double scale = _atol + Math.Abs(ys[e]) * _rtol;
            d0 += ys[e] / scale * (ys[e] / scale);
            d1 += fs[e] / scale * (fs[e] / scale);
        }
        d0 = Math.Sqrt(d0 / ys.Length);
        d1 = Math.Sqrt(d1 / ys.Length);
        double h0 = d0 < 1e-5 || d1 < 1e-5 ? 1e-6 : 0.01 * d0 / d1;
        var y1 = new Tensor(y0.Shape);
        var y1s = y1.Span;
        for (int e = 0; e < ys.Length; e++) y1s[e] = ys[e] + (float)h0 * fs[e];
        var f1 = Call(y1, t0 + h0).Span;
        double d2 = 0;
        for (int e = 0; e < ys.Length; e++)
        {
            double scale = _atol + Math.Abs(ys[e]) * _rtol;
            double diff = (f1[e] - fs[e]) / scale;
            d2 += diff * diff;
        }
        d2 = Math.Sqrt(d2 / ys.Length) / h0;
        double h1 = d1 <= 1e-15 && d2 <= 1e-15
            ? Math.Max(1e-6, h0 * 1e-3)
            : Math.Pow(0.01 / Math.Max(d1, d2), 1 / Order);
        return Math.Min(100 * h0, h1);
    }
}
