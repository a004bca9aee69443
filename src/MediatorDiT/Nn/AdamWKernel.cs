using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace MediatorDiT.Nn;

/// <summary>
/// The float32 scalars of one AdamW step of one parameter, computed by the optimiser in float64 as PyTorch does:
/// decay = 1 - lr wd, StepSize = lr / (1 - b1^t), Bc2Sqrt = sqrt(1 - b2^t).
/// </summary>
internal readonly record struct AdamWScalars(float Decay, bool Decays, float Beta1, float Beta2, float OneMinusBeta1,
    float OneMinusBeta2, float Bc2Sqrt, float Eps, float StepSize);

/// <summary>
/// AdamW's element update (torch.optim.AdamW's single-tensor path) over one parameter's values p, gradient g and
/// moments m, v, all of one length: p *= decay; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
/// p -= StepSize m / (sqrt(v) / Bc2Sqrt + eps). Written once over <see cref="ISimd{TV}"/> with the same IEEE
/// operations lane by lane as the scalar loop (no fused multiply-adds), so every width, and
/// <see cref="ReferenceAdamWKernel"/>, give the same bits.
/// </summary>
internal static class AdamWKernel
{
    public static void Update(Span<float> p, ReadOnlySpan<float> g, Span<float> m, Span<float> v, in AdamWScalars s)
        => Update(p, g, m, v, s, Simd.Widest);

    /// <summary>As above at a chosen vector width (tests run each).</summary>
    internal static void Update(Span<float> p, ReadOnlySpan<float> g, Span<float> m, Span<float> v, in AdamWScalars s, SimdWidth width)
    {
        int n = p.Length;
        if (g.Length < n || m.Length < n || v.Length < n) throw new ArgumentException("g, m and v must be as long as p.");
        ref float pr = ref MemoryMarshal.GetReference(p);
        ref float gr = ref MemoryMarshal.GetReference(g);
        ref float mr = ref MemoryMarshal.GetReference(m);
        ref float vr = ref MemoryMarshal.GetReference(v);
        int k = width switch
        {
            SimdWidth.W512 => Update<W512, Vector512<float>>(ref pr, ref gr, ref mr, ref vr, n, s),
            SimdWidth.W256 => Update<W256, Vector256<float>>(ref pr, ref gr, ref mr, ref vr, n, s),
            _ => Update<W128, Vector128<float>>(ref pr, ref gr, ref mr, ref vr, n, s),
        };
        ReferenceAdamWKernel.Update(p[k..], g[k..], m[k..], v[k..], s);
    }

    /// <summary>The whole vectors; returns where the scalar tail starts.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int Update<TW, TV>(ref float p, ref float g, ref float m, ref float v, int n, in AdamWScalars s)
        where TW : struct, ISimd<TV> where TV : struct
    {
        if (!TW.IsAccelerated) return 0;
        TV decay = TW.Splat(s.Decay), b1 = TW.Splat(s.Beta1), b2 = TW.Splat(s.Beta2);
        TV oneMinusB1 = TW.Splat(s.OneMinusBeta1), oneMinusB2 = TW.Splat(s.OneMinusBeta2);
        TV bc2 = TW.Splat(s.Bc2Sqrt), eps = TW.Splat(s.Eps), step = TW.Splat(-s.StepSize);
        bool decays = s.Decays;
        int k = 0;
        for (; k <= n - TW.Count; k += TW.Count)
        {
            var pk = TW.Load(ref p, (nuint)k);
            var gk = TW.Load(ref g, (nuint)k);
            if (decays) pk = TW.Multiply(pk, decay);
            var mk = TW.Add(TW.Multiply(TW.Load(ref m, (nuint)k), b1), TW.Multiply(gk, oneMinusB1));
            var vk = TW.Add(TW.Multiply(TW.Load(ref v, (nuint)k), b2), TW.Multiply(TW.Multiply(gk, gk), oneMinusB2));
            var denom = TW.Add(TW.Divide(TW.Sqrt(vk), bc2), eps);
            pk = TW.Add(pk, TW.Multiply(step, TW.Divide(mk, denom)));
            TW.Store(mk, ref m, (nuint)k);
            TW.Store(vk, ref v, (nuint)k);
            TW.Store(pk, ref p, (nuint)k);
        }
        return k;
    }
}

/// <summary>The scalar loop <see cref="AdamWKernel"/> must equal bit for bit (it also runs the vector tails).</summary>
internal static class ReferenceAdamWKernel
{
    public static void Update(Span<float> p, ReadOnlySpan<float> g, Span<float> m, Span<float> v, in AdamWScalars s)
    {
        for (int k = 0; k < p.Length; k++)
        {
            if (s.Decays) p[k] *= s.Decay;
            m[k] = m[k] * s.Beta1 + g[k] * s.OneMinusBeta1;
            v[k] = v[k] * s.Beta2 + g[k] * g[k] * s.OneMinusBeta2;
            float denom = MathF.Sqrt(v[k]) / s.Bc2Sqrt + s.Eps;
            p[k] += -s.StepSize * (m[k] / denom);
        }
    }
}
