using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace MediatorDiT.Nn;

/// <summary>
/// The gated residual of DiT/SiT's adaLN-Zero blocks, x + gate * branch, for one token row of d channels (the
/// block picks the row's image's gate). Written once over <see cref="ISimd{TV}"/>; element-wise and unfused, so
/// every width and <see cref="ReferenceGatedResidual"/> give the same bits (those of the vector library's
/// MultiplyAdd and Multiply it replaced).
/// </summary>
internal static class GatedResidual
{
    /// <summary>dst = branch * gate + src; dst may be src.</summary>
    public static void Forward(ReadOnlySpan<float> src, ReadOnlySpan<float> branch, ReadOnlySpan<float> gate, Span<float> dst)
        => Forward(src, branch, gate, dst, Simd.Widest);

    internal static void Forward(ReadOnlySpan<float> src, ReadOnlySpan<float> branch, ReadOnlySpan<float> gate, Span<float> dst, SimdWidth width)
    {
        int d = dst.Length;
        if (src.Length < d || branch.Length < d || gate.Length < d) throw new ArgumentException("src, branch and gate must be as long as dst.");
        ref float s = ref MemoryMarshal.GetReference(src);
        ref float b = ref MemoryMarshal.GetReference(branch);
        ref float g = ref MemoryMarshal.GetReference(gate);
        ref float o = ref MemoryMarshal.GetReference(dst);
        int j = width switch
        {
            SimdWidth.W512 => Forward<W512, Vector512<float>>(ref s, ref b, ref g, ref o, d),
            SimdWidth.W256 => Forward<W256, Vector256<float>>(ref s, ref b, ref g, ref o, d),
            _ => Forward<W128, Vector128<float>>(ref s, ref b, ref g, ref o, d),
        };
        for (; j < d; j++) Unsafe.Add(ref o, j) = Unsafe.Add(ref b, j) * Unsafe.Add(ref g, j) + Unsafe.Add(ref s, j);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int Forward<TW, TV>(ref float src, ref float branch, ref float gate, ref float dst, int d)
        where TW : struct, ISimd<TV> where TV : struct
    {
        if (!TW.IsAccelerated) return 0;
        int j = 0;
        for (; j <= d - TW.Count; j += TW.Count)
            TW.Store(TW.Add(TW.Multiply(TW.Load(ref branch, (nuint)j), TW.Load(ref gate, (nuint)j)), TW.Load(ref src, (nuint)j)), ref dst, (nuint)j);
        return j;
    }

    /// <summary>From dy = dL/d(output) (d): dGate += dy * branch, dBranch = dy * gate.</summary>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> branch, ReadOnlySpan<float> gate, Span<float> dGate, Span<float> dBranch)
        => Backward(dy, branch, gate, dGate, dBranch, Simd.Widest);

    internal static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> branch, ReadOnlySpan<float> gate, Span<float> dGate,
        Span<float> dBranch, SimdWidth width)
    {
        int d = dy.Length;
        if (branch.Length < d || gate.Length < d || dGate.Length < d || dBranch.Length < d)
            throw new ArgumentException("branch, gate, dGate and dBranch must be as long as dy.");
        ref float y = ref MemoryMarshal.GetReference(dy);
        ref float b = ref MemoryMarshal.GetReference(branch);
        ref float g = ref MemoryMarshal.GetReference(gate);
        ref float dg = ref MemoryMarshal.GetReference(dGate);
        ref float db = ref MemoryMarshal.GetReference(dBranch);
        int j = width switch
        {
            SimdWidth.W512 => Backward<W512, Vector512<float>>(ref y, ref b, ref g, ref dg, ref db, d),
            SimdWidth.W256 => Backward<W256, Vector256<float>>(ref y, ref b, ref g, ref dg, ref db, d),
            _ => Backward<W128, Vector128<float>>(ref y, ref b, ref g, ref dg, ref db, d),
        };
        for (; j < d; j++)
        {
            float gy = Unsafe.Add(ref y, j);
            Unsafe.Add(ref dg, j) = gy * Unsafe.Add(ref b, j) + Unsafe.Add(ref dg, j);
            Unsafe.Add(ref db, j) = gy * Unsafe.Add(ref g, j);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int Backward<TW, TV>(ref float dy, ref float branch, ref float gate, ref float dGate, ref float dBranch, int d)
        where TW : struct, ISimd<TV> where TV : struct
    {
        if (!TW.IsAccelerated) return 0;
        int j = 0;
        for (; j <= d - TW.Count; j += TW.Count)
        {
            var gy = TW.Load(ref dy, (nuint)j);
            TW.Store(TW.Add(TW.Multiply(gy, TW.Load(ref branch, (nuint)j)), TW.Load(ref dGate, (nuint)j)), ref dGate, (nuint)j);
            TW.Store(TW.Multiply(gy, TW.Load(ref gate, (nuint)j)), ref dBranch, (nuint)j);
        }
        return j;
    }
}

/// <summary>The scalar loops <see cref="GatedResidual"/> must equal bit for bit.</summary>
internal static class ReferenceGatedResidual
{
    public static void Forward(ReadOnlySpan<float> src, ReadOnlySpan<float> branch, ReadOnlySpan<float> gate, Span<float> dst)
    {
        for (int j = 0; j < dst.Length; j++) dst[j] = branch[j] * gate[j] + src[j];
    }

    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> branch, ReadOnlySpan<float> gate, Span<float> dGate, Span<float> dBranch)
    {
        for (int j = 0; j < dy.Length; j++)
        {
            dGate[j] = dy[j] * branch[j] + dGate[j];
            dBranch[j] = dy[j] * gate[j];
        }
    }
}
