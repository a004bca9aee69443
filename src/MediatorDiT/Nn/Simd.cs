using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MediatorDiT.Nn;

/// <summary>
/// The float vector operations of one register width, for kernels written once and specialised by the JIT per
/// width: <c>static void Kernel&lt;TW, TV&gt;(...) where TW : struct, ISimd&lt;TV&gt; where TV : struct</c> runs as
/// 512-, 256- or 128-bit code with TW = <see cref="W512"/>, <see cref="W256"/>, <see cref="W128"/> and TV the
/// matching Vector512/256/128 of float. Every member inlines to the one vector operation it names. The values
/// stay the runtime's own vector types: wrapped in a struct, a constant operand or a compare mask is no longer
/// visible to the JIT where it expands Max, Min and ConditionalSelect (GELU ran 1.5x slower that way here).
/// Each width performs the same IEEE operations lane by lane, so an element-wise kernel gives the same bits at
/// every width; only cross-lane reductions (sums) depend on the width. Integer lanes (for building powers of
/// two) travel in the same register, reinterpreted.
/// </summary>
internal interface ISimd<TV> where TV : struct
{
    /// <summary>Floats per vector.</summary>
    static abstract int Count { get; }
    /// <summary>Whether the runtime accelerates this width (a JIT-time constant); kernels skip their vector loops otherwise.</summary>
    static abstract bool IsAccelerated { get; }
    static abstract TV Zero { get; }
    static abstract TV One { get; }
    static abstract TV Splat(float x);
    static abstract TV Load(ref float p);
    static abstract TV Load(ref float p, nuint offset);
    static abstract void Store(TV v, ref float p);
    static abstract void Store(TV v, ref float p, nuint offset);
    static abstract TV Add(TV a, TV b);
    static abstract TV Subtract(TV a, TV b);
    static abstract TV Multiply(TV a, TV b);
    static abstract TV Divide(TV a, TV b);
    /// <summary>a * b + c with one rounding.</summary>
    static abstract TV Fma(TV a, TV b, TV c);
    static abstract TV Max(TV a, TV b);
    static abstract TV Min(TV a, TV b);
    /// <summary>Max against a constant: the JIT then knows b is neither NaN nor -0 and emits one max instruction.</summary>
    static abstract TV Max(TV a, float b);
    static abstract TV Min(TV a, float b);
    static abstract TV Sqrt(TV x);
    /// <summary>Round to the nearest integer, ties to even.</summary>
    static abstract TV Round(TV x);
    /// <summary>Lanes where a &lt; b set (all bits), others clear.</summary>
    static abstract TV LessThan(TV a, TV b);
    static abstract TV GreaterThan(TV a, TV b);
    /// <summary>Lanes where a == b set: with a = b = x, the lanes that are not NaN.</summary>
    static abstract TV EqualTo(TV a, TV b);
    /// <summary>a where the mask lane is set, b elsewhere.</summary>
    static abstract TV Select(TV mask, TV a, TV b);
    /// <summary>The maximum of the lanes, in every lane.</summary>
    static abstract TV MaxAll(TV v);
    /// <summary>The sum of the lanes by a fixed pairwise tree (halves, then quarters, ...), in every lane.</summary>
    static abstract TV SumAll(TV v);
    /// <summary>The sum of the lanes as the runtime's VectorN.Sum adds them.</summary>
    static abstract float Sum(TV v);
    /// <summary>Lane 0.</summary>
    static abstract float First(TV v);
    /// <summary>Float lanes (already integral, in int range) converted to int32 lanes.</summary>
    static abstract TV ConvertToInt32(TV x);
    /// <summary>int32 lanes a - b.</summary>
    static abstract TV IntSubtract(TV a, TV b);
    /// <summary>int32 lanes shifted right by one, keeping the sign (floor(n / 2)).</summary>
    static abstract TV IntHalve(TV n);
    /// <summary>2^n as floats from int32 lanes n in [-126, 127]: (n + 127) placed in the exponent bits.</summary>
    static abstract TV Pow2(TV n);
    /// <summary>Lanes [0, count) set.</summary>
    static abstract TV LanesBelow(int count);
    /// <summary>Whether <see cref="TransposeScaled"/> is available.</summary>
    static abstract bool CanTranspose { get; }
    /// <summary>dst row m (rows ds apart) lane i = scale lane m * src row i (rows ss apart) lane m, for a Count x Count block.</summary>
    static abstract void TransposeScaled(ref float src, int ss, TV scale, ref float dst, int ds);
}

/// <summary>A vector width a kernel can be asked to run at (tests run each on one machine).</summary>
internal enum SimdWidth
{
    W128 = 128,
    W256 = 256,
    W512 = 512,
}

/// <summary>
/// Which width the kernels run at: the widest the runtime accelerates (DOTNET_EnableAVX512=0 and
/// DOTNET_PreferredVectorBitWidth narrow it). Unlike the GEMM, the kernels do not follow
/// <see cref="Tensors.ManagedGemm.ForceVector256"/>: their widths differ by float rounding in reductions, and a
/// process-wide switch flipped between two forwards would make them differ. With nothing accelerated the kernels
/// get <see cref="SimdWidth.W128"/> and run only their scalar loops.
/// </summary>
internal static class Simd
{
    public static SimdWidth Widest =>
        Vector512.IsHardwareAccelerated ? SimdWidth.W512 : Vector256.IsHardwareAccelerated ? SimdWidth.W256 : SimdWidth.W128;

    /// <summary>
    /// The width for a row of <paramref name="length"/> floats: the widest, except that a row shorter than one
    /// 512-bit vector takes 256-bit ones (softmax rows of 9 mediators). A row shorter than the chosen vector runs
    /// the kernel's scalar loop, so 128-bit vectors serve only machines where they are the widest (rows of 4 to 7
    /// floats stay scalar with AVX2, as before).
    /// </summary>
    public static SimdWidth ForRow(int length) =>
        Vector512.IsHardwareAccelerated ? (length >= 16 ? SimdWidth.W512 : SimdWidth.W256)
        : Vector256.IsHardwareAccelerated ? SimdWidth.W256 : SimdWidth.W128;
}

/// <summary>512-bit vectors (AVX-512).</summary>
internal readonly struct W512 : ISimd<Vector512<float>>
{
    public static int Count => Vector512<float>.Count;
    public static bool IsAccelerated => Vector512.IsHardwareAccelerated;
    public static Vector512<float> Zero { [MethodImpl(MethodImplOptions.AggressiveInlining)] get => Vector512<float>.Zero; }
    public static Vector512<float> One { [MethodImpl(MethodImplOptions.AggressiveInlining)] get => Vector512<float>.One; }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Splat(float x) => Vector512.Create(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Load(ref float p) => Vector512.LoadUnsafe(ref p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Load(ref float p, nuint offset) => Vector512.LoadUnsafe(ref p, offset);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector512<float> v, ref float p) => v.StoreUnsafe(ref p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector512<float> v, ref float p, nuint offset) => v.StoreUnsafe(ref p, offset);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Subtract(Vector512<float> a, Vector512<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Multiply(Vector512<float> a, Vector512<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Divide(Vector512<float> a, Vector512<float> b) => a / b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Fma(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Vector512.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Max(Vector512<float> a, Vector512<float> b) => Vector512.Max(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Min(Vector512<float> a, Vector512<float> b) => Vector512.Min(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Max(Vector512<float> a, float b) => Vector512.Max(a, Vector512.Create(b));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Min(Vector512<float> a, float b) => Vector512.Min(a, Vector512.Create(b));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Sqrt(Vector512<float> x) => Vector512.Sqrt(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Round(Vector512<float> x) => Vector512.Round(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> LessThan(Vector512<float> a, Vector512<float> b) => Vector512.LessThan(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> GreaterThan(Vector512<float> a, Vector512<float> b) => Vector512.GreaterThan(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> EqualTo(Vector512<float> a, Vector512<float> b) => Vector512.Equals(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Select(Vector512<float> mask, Vector512<float> a, Vector512<float> b) => Vector512.ConditionalSelect(mask, a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector512<float> v) => Vector512.Sum(v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float First(Vector512<float> v) => v.ToScalar();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> ConvertToInt32(Vector512<float> x) => Vector512.ConvertToInt32(x).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> IntSubtract(Vector512<float> a, Vector512<float> b) => (a.AsInt32() - b.AsInt32()).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> IntHalve(Vector512<float> n) => (n.AsInt32() >> 1).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Pow2(Vector512<float> n) => ((n.AsInt32() + Vector512.Create(127)) << 23).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LanesBelow(int count) => Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(count)).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> MaxAll(Vector512<float> v)
    {
        v = Vector512.Max(v, Vector512.Shuffle(v, Vector512.Create(8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7)));
        v = Vector512.Max(v, Vector512.Shuffle(v, Vector512.Create(4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11)));
        v = Vector512.Max(v, Vector512.Shuffle(v, Vector512.Create(2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13)));
        return Vector512.Max(v, Vector512.Shuffle(v, Vector512.Create(1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14)));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> SumAll(Vector512<float> v)
    {
        v += Vector512.Shuffle(v, Vector512.Create(8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7));
        v += Vector512.Shuffle(v, Vector512.Create(4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11));
        v += Vector512.Shuffle(v, Vector512.Create(2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13));
        return v + Vector512.Shuffle(v, Vector512.Create(1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14));
    }

    public static bool CanTranspose => Avx512F.IsSupported;

    /// <summary>
    /// 16 x 16 transpose in four rounds: 32-bit and 64-bit interleaves within 128-bit lanes, then two rounds of
    /// 128-bit lane shuffles (0x88 takes lanes 0 and 2 of each source, 0xdd lanes 1 and 3).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void TransposeScaled(ref float src, int ss, Vector512<float> scale, ref float dst, int ds)
    {
        var r0 = Vector512.LoadUnsafe(ref src) * scale;
        var r1 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, ss)) * scale;
        var r2 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, 2 * ss)) * scale;
        var r3 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, 3 * ss)) * scale;
        var r4 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, 4 * ss)) * scale;
        var r5 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, 5 * ss)) * scale;
        var r6 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, 6 * ss)) * scale;
        var r7 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, 7 * ss)) * scale;
        var r8 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, 8 * ss)) * scale;
        var r9 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, 9 * ss)) * scale;
        var r10 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, 10 * ss)) * scale;
        var r11 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, 11 * ss)) * scale;
        var r12 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, 12 * ss)) * scale;
        var r13 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, 13 * ss)) * scale;
        var r14 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, 14 * ss)) * scale;
        var r15 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, 15 * ss)) * scale;
        var t0 = Avx512F.UnpackLow(r0, r1); var t1 = Avx512F.UnpackHigh(r0, r1);
        var t2 = Avx512F.UnpackLow(r2, r3); var t3 = Avx512F.UnpackHigh(r2, r3);
        var t4 = Avx512F.UnpackLow(r4, r5); var t5 = Avx512F.UnpackHigh(r4, r5);
        var t6 = Avx512F.UnpackLow(r6, r7); var t7 = Avx512F.UnpackHigh(r6, r7);
        var t8 = Avx512F.UnpackLow(r8, r9); var t9 = Avx512F.UnpackHigh(r8, r9);
        var t10 = Avx512F.UnpackLow(r10, r11); var t11 = Avx512F.UnpackHigh(r10, r11);
        var t12 = Avx512F.UnpackLow(r12, r13); var t13 = Avx512F.UnpackHigh(r12, r13);
        var t14 = Avx512F.UnpackLow(r14, r15); var t15 = Avx512F.UnpackHigh(r14, r15);
        r0 = Lo64(t0, t2); r1 = Hi64(t0, t2); r2 = Lo64(t1, t3); r3 = Hi64(t1, t3);
        r4 = Lo64(t4, t6); r5 = Hi64(t4, t6); r6 = Lo64(t5, t7); r7 = Hi64(t5, t7);
        r8 = Lo64(t8, t10); r9 = Hi64(t8, t10); r10 = Lo64(t9, t11); r11 = Hi64(t9, t11);
        r12 = Lo64(t12, t14); r13 = Hi64(t12, t14); r14 = Lo64(t13, t15); r15 = Hi64(t13, t15);
        t0 = Avx512F.Shuffle4x128(r0, r4, 0x88); t1 = Avx512F.Shuffle4x128(r1, r5, 0x88);
        t2 = Avx512F.Shuffle4x128(r2, r6, 0x88); t3 = Avx512F.Shuffle4x128(r3, r7, 0x88);
        t4 = Avx512F.Shuffle4x128(r0, r4, 0xdd); t5 = Avx512F.Shuffle4x128(r1, r5, 0xdd);
        t6 = Avx512F.Shuffle4x128(r2, r6, 0xdd); t7 = Avx512F.Shuffle4x128(r3, r7, 0xdd);
        t8 = Avx512F.Shuffle4x128(r8, r12, 0x88); t9 = Avx512F.Shuffle4x128(r9, r13, 0x88);
        t10 = Avx512F.Shuffle4x128(r10, r14, 0x88); t11 = Avx512F.Shuffle4x128(r11, r15, 0x88);
        t12 = Avx512F.Shuffle4x128(r8, r12, 0xdd); t13 = Avx512F.Shuffle4x128(r9, r13, 0xdd);
        t14 = Avx512F.Shuffle4x128(r10, r14, 0xdd); t15 = Avx512F.Shuffle4x128(r11, r15, 0xdd);
        Avx512F.Shuffle4x128(t0, t8, 0x88).StoreUnsafe(ref dst);
        Avx512F.Shuffle4x128(t1, t9, 0x88).StoreUnsafe(ref Unsafe.Add(ref dst, ds));
        Avx512F.Shuffle4x128(t2, t10, 0x88).StoreUnsafe(ref Unsafe.Add(ref dst, 2 * ds));
        Avx512F.Shuffle4x128(t3, t11, 0x88).StoreUnsafe(ref Unsafe.Add(ref dst, 3 * ds));
        Avx512F.Shuffle4x128(t4, t12, 0x88).StoreUnsafe(ref Unsafe.Add(ref dst, 4 * ds));
        Avx512F.Shuffle4x128(t5, t13, 0x88).StoreUnsafe(ref Unsafe.Add(ref dst, 5 * ds));
        Avx512F.Shuffle4x128(t6, t14, 0x88).StoreUnsafe(ref Unsafe.Add(ref dst, 6 * ds));
        Avx512F.Shuffle4x128(t7, t15, 0x88).StoreUnsafe(ref Unsafe.Add(ref dst, 7 * ds));
        Avx512F.Shuffle4x128(t0, t8, 0xdd).StoreUnsafe(ref Unsafe.Add(ref dst, 8 * ds));
        Avx512F.Shuffle4x128(t1, t9, 0xdd).StoreUnsafe(ref Unsafe.Add(ref dst, 9 * ds));
        Avx512F.Shuffle4x128(t2, t10, 0xdd).StoreUnsafe(ref Unsafe.Add(ref dst, 10 * ds));
        Avx512F.Shuffle4x128(t3, t11, 0xdd).StoreUnsafe(ref Unsafe.Add(ref dst, 11 * ds));
        Avx512F.Shuffle4x128(t4, t12, 0xdd).StoreUnsafe(ref Unsafe.Add(ref dst, 12 * ds));
        Avx512F.Shuffle4x128(t5, t13, 0xdd).StoreUnsafe(ref Unsafe.Add(ref dst, 13 * ds));
        Avx512F.Shuffle4x128(t6, t14, 0xdd).StoreUnsafe(ref Unsafe.Add(ref dst, 14 * ds));
        Avx512F.Shuffle4x128(t7, t15, 0xdd).StoreUnsafe(ref Unsafe.Add(ref dst, 15 * ds));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Lo64(Vector512<float> a, Vector512<float> b) => Avx512F.UnpackLow(a.AsDouble(), b.AsDouble()).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Hi64(Vector512<float> a, Vector512<float> b) => Avx512F.UnpackHigh(a.AsDouble(), b.AsDouble()).AsSingle();
}

/// <summary>256-bit vectors (AVX2).</summary>
internal readonly struct W256 : ISimd<Vector256<float>>
{
    public static int Count => Vector256<float>.Count;
    public static bool IsAccelerated => Vector256.IsHardwareAccelerated;
    public static Vector256<float> Zero { [MethodImpl(MethodImplOptions.AggressiveInlining)] get => Vector256<float>.Zero; }
    public static Vector256<float> One { [MethodImpl(MethodImplOptions.AggressiveInlining)] get => Vector256<float>.One; }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Splat(float x) => Vector256.Create(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Load(ref float p) => Vector256.LoadUnsafe(ref p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Load(ref float p, nuint offset) => Vector256.LoadUnsafe(ref p, offset);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector256<float> v, ref float p) => v.StoreUnsafe(ref p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector256<float> v, ref float p, nuint offset) => v.StoreUnsafe(ref p, offset);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Subtract(Vector256<float> a, Vector256<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Multiply(Vector256<float> a, Vector256<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Divide(Vector256<float> a, Vector256<float> b) => a / b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Fma(Vector256<float> a, Vector256<float> b, Vector256<float> c) => Vector256.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Max(Vector256<float> a, Vector256<float> b) => Vector256.Max(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Min(Vector256<float> a, Vector256<float> b) => Vector256.Min(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Max(Vector256<float> a, float b) => Vector256.Max(a, Vector256.Create(b));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Min(Vector256<float> a, float b) => Vector256.Min(a, Vector256.Create(b));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Sqrt(Vector256<float> x) => Vector256.Sqrt(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Round(Vector256<float> x) => Vector256.Round(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> LessThan(Vector256<float> a, Vector256<float> b) => Vector256.LessThan(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> GreaterThan(Vector256<float> a, Vector256<float> b) => Vector256.GreaterThan(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> EqualTo(Vector256<float> a, Vector256<float> b) => Vector256.Equals(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Select(Vector256<float> mask, Vector256<float> a, Vector256<float> b) => Vector256.ConditionalSelect(mask, a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector256<float> v) => Vector256.Sum(v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float First(Vector256<float> v) => v.ToScalar();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> ConvertToInt32(Vector256<float> x) => Vector256.ConvertToInt32(x).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> IntSubtract(Vector256<float> a, Vector256<float> b) => (a.AsInt32() - b.AsInt32()).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> IntHalve(Vector256<float> n) => (n.AsInt32() >> 1).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Pow2(Vector256<float> n) => ((n.AsInt32() + Vector256.Create(127)) << 23).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> LanesBelow(int count) => Vector256.LessThan(Vector256<int>.Indices, Vector256.Create(count)).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> MaxAll(Vector256<float> v)
    {
        v = Vector256.Max(v, Vector256.Shuffle(v, Vector256.Create(4, 5, 6, 7, 0, 1, 2, 3)));
        v = Vector256.Max(v, Vector256.Shuffle(v, Vector256.Create(2, 3, 0, 1, 6, 7, 4, 5)));
        return Vector256.Max(v, Vector256.Shuffle(v, Vector256.Create(1, 0, 3, 2, 5, 4, 7, 6)));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> SumAll(Vector256<float> v)
    {
        v += Vector256.Shuffle(v, Vector256.Create(4, 5, 6, 7, 0, 1, 2, 3));
        v += Vector256.Shuffle(v, Vector256.Create(2, 3, 0, 1, 6, 7, 4, 5));
        return v + Vector256.Shuffle(v, Vector256.Create(1, 0, 3, 2, 5, 4, 7, 6));
    }

    public static bool CanTranspose => Avx.IsSupported;

    /// <summary>
    /// 8 x 8 transpose in three rounds: 32-bit interleaves and 64-bit shuffles within 128-bit lanes, then the
    /// 128-bit halves exchanged (0x20 takes both low halves, 0x31 both high ones).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void TransposeScaled(ref float src, int ss, Vector256<float> scale, ref float dst, int ds)
    {
        var r0 = Vector256.LoadUnsafe(ref src) * scale;
        var r1 = Vector256.LoadUnsafe(ref Unsafe.Add(ref src, ss)) * scale;
        var r2 = Vector256.LoadUnsafe(ref Unsafe.Add(ref src, 2 * ss)) * scale;
        var r3 = Vector256.LoadUnsafe(ref Unsafe.Add(ref src, 3 * ss)) * scale;
        var r4 = Vector256.LoadUnsafe(ref Unsafe.Add(ref src, 4 * ss)) * scale;
        var r5 = Vector256.LoadUnsafe(ref Unsafe.Add(ref src, 5 * ss)) * scale;
        var r6 = Vector256.LoadUnsafe(ref Unsafe.Add(ref src, 6 * ss)) * scale;
        var r7 = Vector256.LoadUnsafe(ref Unsafe.Add(ref src, 7 * ss)) * scale;
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE);
        var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44); var u5 = Avx.Shuffle(t4, t6, 0xEE);
        var u6 = Avx.Shuffle(t5, t7, 0x44); var u7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Permute2x128(u0, u4, 0x20).StoreUnsafe(ref dst);
        Avx.Permute2x128(u1, u5, 0x20).StoreUnsafe(ref Unsafe.Add(ref dst, ds));
        Avx.Permute2x128(u2, u6, 0x20).StoreUnsafe(ref Unsafe.Add(ref dst, 2 * ds));
        Avx.Permute2x128(u3, u7, 0x20).StoreUnsafe(ref Unsafe.Add(ref dst, 3 * ds));
        Avx.Permute2x128(u0, u4, 0x31).StoreUnsafe(ref Unsafe.Add(ref dst, 4 * ds));
        Avx.Permute2x128(u1, u5, 0x31).StoreUnsafe(ref Unsafe.Add(ref dst, 5 * ds));
        Avx.Permute2x128(u2, u6, 0x31).StoreUnsafe(ref Unsafe.Add(ref dst, 6 * ds));
        Avx.Permute2x128(u3, u7, 0x31).StoreUnsafe(ref Unsafe.Add(ref dst, 7 * ds));
    }
}

/// <summary>128-bit vectors: ARM64 (NEON) and x86 machines without AVX2.</summary>
internal readonly struct W128 : ISimd<Vector128<float>>
{
    public static int Count => Vector128<float>.Count;
    public static bool IsAccelerated => Vector128.IsHardwareAccelerated;
    public static Vector128<float> Zero { [MethodImpl(MethodImplOptions.AggressiveInlining)] get => Vector128<float>.Zero; }
    public static Vector128<float> One { [MethodImpl(MethodImplOptions.AggressiveInlining)] get => Vector128<float>.One; }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Splat(float x) => Vector128.Create(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Load(ref float p) => Vector128.LoadUnsafe(ref p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Load(ref float p, nuint offset) => Vector128.LoadUnsafe(ref p, offset);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector128<float> v, ref float p) => v.StoreUnsafe(ref p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector128<float> v, ref float p, nuint offset) => v.StoreUnsafe(ref p, offset);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Add(Vector128<float> a, Vector128<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Subtract(Vector128<float> a, Vector128<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Multiply(Vector128<float> a, Vector128<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Divide(Vector128<float> a, Vector128<float> b) => a / b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Fma(Vector128<float> a, Vector128<float> b, Vector128<float> c) => Vector128.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Max(Vector128<float> a, Vector128<float> b) => Vector128.Max(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Min(Vector128<float> a, Vector128<float> b) => Vector128.Min(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Max(Vector128<float> a, float b) => Vector128.Max(a, Vector128.Create(b));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Min(Vector128<float> a, float b) => Vector128.Min(a, Vector128.Create(b));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Sqrt(Vector128<float> x) => Vector128.Sqrt(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Round(Vector128<float> x) => Vector128.Round(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> LessThan(Vector128<float> a, Vector128<float> b) => Vector128.LessThan(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> GreaterThan(Vector128<float> a, Vector128<float> b) => Vector128.GreaterThan(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> EqualTo(Vector128<float> a, Vector128<float> b) => Vector128.Equals(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Select(Vector128<float> mask, Vector128<float> a, Vector128<float> b) => Vector128.ConditionalSelect(mask, a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector128<float> v) => Vector128.Sum(v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float First(Vector128<float> v) => v.ToScalar();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> ConvertToInt32(Vector128<float> x) => Vector128.ConvertToInt32(x).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> IntSubtract(Vector128<float> a, Vector128<float> b) => (a.AsInt32() - b.AsInt32()).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> IntHalve(Vector128<float> n) => (n.AsInt32() >> 1).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Pow2(Vector128<float> n) => ((n.AsInt32() + Vector128.Create(127)) << 23).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> LanesBelow(int count) => Vector128.LessThan(Vector128<int>.Indices, Vector128.Create(count)).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> MaxAll(Vector128<float> v)
    {
        v = Vector128.Max(v, Vector128.Shuffle(v, Vector128.Create(2, 3, 0, 1)));
        return Vector128.Max(v, Vector128.Shuffle(v, Vector128.Create(1, 0, 3, 2)));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> SumAll(Vector128<float> v)
    {
        v += Vector128.Shuffle(v, Vector128.Create(2, 3, 0, 1));
        return v + Vector128.Shuffle(v, Vector128.Create(1, 0, 3, 2));
    }

    /// <summary>SSE's 4 x 4 transpose where x86 offers it; ARM64 scatters one probability at a time instead.</summary>
    public static bool CanTranspose => Sse.IsSupported;

    /// <summary>4 x 4 transpose: 32-bit interleaves, then the 64-bit halves combined.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void TransposeScaled(ref float src, int ss, Vector128<float> scale, ref float dst, int ds)
    {
        var r0 = Vector128.LoadUnsafe(ref src) * scale;
        var r1 = Vector128.LoadUnsafe(ref Unsafe.Add(ref src, ss)) * scale;
        var r2 = Vector128.LoadUnsafe(ref Unsafe.Add(ref src, 2 * ss)) * scale;
        var r3 = Vector128.LoadUnsafe(ref Unsafe.Add(ref src, 3 * ss)) * scale;
        var t0 = Sse.UnpackLow(r0, r1); var t1 = Sse.UnpackHigh(r0, r1);
        var t2 = Sse.UnpackLow(r2, r3); var t3 = Sse.UnpackHigh(r2, r3);
        Sse.MoveLowToHigh(t0, t2).StoreUnsafe(ref dst);
        Sse.MoveHighToLow(t2, t0).StoreUnsafe(ref Unsafe.Add(ref dst, ds));
        Sse.MoveLowToHigh(t1, t3).StoreUnsafe(ref Unsafe.Add(ref dst, 2 * ds));
        Sse.MoveHighToLow(t3, t1).StoreUnsafe(ref Unsafe.Add(ref dst, 3 * ds));
    }
}
