using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace MediatorDiT.Nn;

/// <summary>
/// Classifier-free guidance's combination of one sample's two predictions, g = uncond + scale (cond - uncond),
/// written into both (the guided half is repeated in the output). Written once over <see cref="ISimd{TV}"/>;
/// element-wise and unfused, so every width and <see cref="ReferenceGuidanceKernel"/> give the same bits.
/// </summary>
internal static class GuidanceKernel
{
    public static void Combine(Span<float> cond, Span<float> uncond, float scale) => Combine(cond, uncond, scale, Simd.Widest);

    internal static void Combine(Span<float> cond, Span<float> uncond, float scale, SimdWidth width)
    {
        int n = cond.Length;
        if (uncond.Length != n) throw new ArgumentException("cond and uncond must be equally long.");
        ref float c = ref MemoryMarshal.GetReference(cond);
        ref float u = ref MemoryMarshal.GetReference(uncond);
        int k = width switch
        {
            SimdWidth.W512 => Combine<W512, Vector512<float>>(ref c, ref u, n, scale),
            SimdWidth.W256 => Combine<W256, Vector256<float>>(ref c, ref u, n, scale),
            _ => Combine<W128, Vector128<float>>(ref c, ref u, n, scale),
        };
        ReferenceGuidanceKernel.Combine(cond[k..], uncond[k..], scale);
    }

    /// <summary>The whole vectors; returns where the scalar tail starts.</summary>
    private static int Combine<TW, TV>(ref float cond, ref float uncond, int n, float scale) where TW : struct, ISimd<TV> where TV : struct
    {
        if (!TW.IsAccelerated) return 0;
        var s = TW.Splat(scale);
        int k = 0;
        for (; k <= n - TW.Count; k += TW.Count)
        {
            var u = TW.Load(ref uncond, (nuint)k);
            var g = TW.Add(u, TW.Multiply(s, TW.Subtract(TW.Load(ref cond, (nuint)k), u)));
            TW.Store(g, ref cond, (nuint)k);
            TW.Store(g, ref uncond, (nuint)k);
        }
        return k;
    }
}

/// <summary>The scalar loop <see cref="GuidanceKernel"/> must equal bit for bit (it also runs the vector tails).</summary>
internal static class ReferenceGuidanceKernel
{
    public static void Combine(Span<float> cond, Span<float> uncond, float scale)
    {
        for (int k = 0; k < cond.Length; k++)
        {
            float g = uncond[k] + scale * (cond[k] - uncond[k]);
            cond[k] = g;
            uncond[k] = g;
        }
    }
}
