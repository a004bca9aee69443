using ILGPU;
using ILGPU.Runtime;
using MediatorDiT.Cuda.Kernels;

namespace MediatorDiT.Cuda.Blas;

/// <summary>
/// <see cref="GemmShape"/> as a kernel argument: a plain struct of ints and floats (flags as ints).
/// </summary>
internal readonly struct DeviceGemmArgs(in GemmShape s)
{
    public readonly int TransA = s.TransA ? 1 : 0, TransB = s.TransB ? 1 : 0;
    public readonly int M = s.M, N = s.N, K = s.K, Lda = s.Lda, Ldb = s.Ldb, Ldc = s.Ldc;
    public readonly float Alpha = s.Alpha, Beta = s.Beta;
    public readonly long StrideA = s.StrideA, StrideB = s.StrideB, StrideC = s.StrideC;
}

/// <summary>How a kernel reads one operand element as float32: a float as it is, a bf16 value widened (exactly).</summary>
internal interface IOperandWidening<T> where T : unmanaged
{
    float Widen(T value);
}

/// <summary>float32 operands.</summary>
internal readonly struct Fp32Operands : IOperandWidening<float>
{
    public float Widen(float value) => value;
}

/// <summary>bf16 operands (the upper 16 bits of a float, as ushorts).</summary>
internal readonly struct Bf16Operands : IOperandWidening<ushort>
{
    public float Widen(ushort value) => Bf16.Widen(value);
}

/// <summary>
/// The GEMM kernels written in ILGPU, for every accelerator (the CPU accelerator in tests; a CUDA device without
/// cuBLAS), over float32 or bf16 operands (the kernels' <c>TW</c> widens each element to float32 as it is loaded,
/// exactly, so a bf16 product equals the float32 product of the widened operands bit for bit; <c>TO</c> stores C's
/// element, as it is or rounded to bf16 once).
/// <see cref="Tiled{T, TW, TC, TO}"/> stages T x T tiles of op(A) and op(B) in shared memory, one thread per element of C;
/// <see cref="Plain{T, TW, TC, TO}"/>, its reference twin, reads the operands straight from memory. Both sum the K products in
/// order with fused multiply-adds from zero, so they give the same bits.
/// </summary>
internal static class GemmKernels
{
    /// <summary>op(A)[row, p] of item base offset aOff, as float32.</summary>
    private static float LoadA<T, TW>(ArrayView<T> a, in DeviceGemmArgs g, long aOff, int row, int p) where T : unmanaged where TW : struct, IOperandWidening<T> =>
        default(TW).Widen(g.TransA != 0 ? a[aOff + (long)p * g.Lda + row] : a[aOff + (long)row * g.Lda + p]);

    /// <summary>op(B)[p, col] of item base offset bOff, as float32.</summary>
    private static float LoadB<T, TW>(ArrayView<T> b, in DeviceGemmArgs g, long bOff, int p, int col) where T : unmanaged where TW : struct, IOperandWidening<T> =>
        default(TW).Widen(g.TransB != 0 ? b[bOff + (long)col * g.Ldb + p] : b[bOff + (long)p * g.Ldb + col]);

    private static void Store<TC, TO>(ArrayView<TC> c, in DeviceGemmArgs g, long index, float sum) where TC : unmanaged where TO : struct, IResultFormat<TC>
    {
        float v = g.Alpha * sum;
        c[index] = default(TO).From(g.Beta == 0f ? v : v + g.Beta * default(TO).Widen(c[index]));
    }

    /// <summary>
    /// Groups of T x T threads (T = Group.DimX) each own a T x T block of C (grid: N / T, M / T, batch); per step of T
    /// along K every thread loads one element of the A tile and one of the B tile (as float32) into dynamic shared
    /// memory (2 T^2 floats), then adds its row-by-column products.
    /// </summary>
    public static void Tiled<T, TW, TC, TO>(ArrayView<T> a, ArrayView<T> b, ArrayView<TC> c, DeviceGemmArgs g)
        where T : unmanaged where TW : struct, IOperandWidening<T> where TC : unmanaged where TO : struct, IResultFormat<TC>
    {
        int t = Group.DimX, tx = Group.IdxX, ty = Group.IdxY;
        int col = Grid.IdxX * t + tx, row = Grid.IdxY * t + ty, item = Grid.IdxZ;
        var shared = SharedMemory.GetDynamic<float>();
        var tileA = shared.SubView(0, t * t);
        var tileB = shared.SubView(t * t, t * t);
        long aOff = item * g.StrideA, bOff = item * g.StrideB;
        float sum = 0f;
        for (int p0 = 0; p0 < g.K; p0 += t)
        {
            int pa = p0 + tx, pb = p0 + ty;
            tileA[ty * t + tx] = row < g.M && pa < g.K ? LoadA<T, TW>(a, g, aOff, row, pa) : 0f;
            tileB[ty * t + tx] = pb < g.K && col < g.N ? LoadB<T, TW>(b, g, bOff, pb, col) : 0f;
            Group.Barrier();
            int steps = Math.Min(t, g.K - p0);
            for (int q = 0; q < steps; q++) sum = MathF.FusedMultiplyAdd(tileA[ty * t + q], tileB[q * t + tx], sum);
            Group.Barrier();
        }
        if (row < g.M && col < g.N) Store<TC, TO>(c, g, item * g.StrideC + (long)row * g.Ldc + col, sum);
    }

    /// <summary>One thread per element of C (index: item, row, column), the K products read from memory in order.</summary>
    public static void Plain<T, TW, TC, TO>(Index3D i, ArrayView<T> a, ArrayView<T> b, ArrayView<TC> c, DeviceGemmArgs g)
        where T : unmanaged where TW : struct, IOperandWidening<T> where TC : unmanaged where TO : struct, IResultFormat<TC>
    {
        int item = i.X, row = i.Y, col = i.Z;
        long aOff = item * g.StrideA, bOff = item * g.StrideB;
        float sum = 0f;
        for (int p = 0; p < g.K; p++) sum = MathF.FusedMultiplyAdd(LoadA<T, TW>(a, g, aOff, row, p), LoadB<T, TW>(b, g, bOff, p, col), sum);
        Store<TC, TO>(c, g, item * g.StrideC + (long)row * g.Ldc + col, sum);
    }
}

/// <summary>
/// <see cref="IDeviceGemm"/> by the ILGPU kernels of <see cref="GemmKernels"/>: on a GPU the tiled kernel with the
/// largest square tile (at most 16 x 16) the accelerator's groups hold; on ILGPU's CPU accelerator the plain one,
/// since that accelerator runs a group's threads as OS threads and each barrier is a thread rendezvous (a small
/// model's forward takes seconds tiled, a fraction plain). Tests hold the two equal bit for bit.
/// </summary>
internal sealed class IlgpuGemm : IDeviceGemm
{
    private readonly Accelerator _accelerator;
    private readonly bool _plain;
    private readonly Kernels<float, Fp32Operands, float, Fp32Results> _fp32 = new();
    private readonly Kernels<ushort, Bf16Operands, float, Fp32Results> _bf16 = new();
    private readonly Kernels<ushort, Bf16Operands, ushort, Bf16Results> _bf16Output = new();

    /// <param name="accelerator">the accelerator the products run on</param>
    /// <param name="plain">run the plain one-thread-per-element kernel (true) or the tiled one (false); null: plain on the CPU accelerator only</param>
    public IlgpuGemm(Accelerator accelerator, bool? plain = null)
    {
        _accelerator = accelerator;
        _plain = plain ?? accelerator.AcceleratorType == AcceleratorType.CPU;
        int t = 16;
        while (t > 1 && t * t > accelerator.MaxNumThreadsPerGroup) t /= 2;
        Tile = t;
    }

    /// <summary>The side T of the tiles (and thread groups) of the tiled kernel.</summary>
    public int Tile { get; }

    public void Sgemm(in GemmShape shape, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c) => _fp32.Launch(this, shape, a, b, c);

    public void GemmBf16(in GemmShape shape, ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<float> c) => _bf16.Launch(this, shape, a, b, c);

    public void GemmBf16(in GemmShape shape, ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> c) => _bf16Output.Launch(this, shape, a, b, c);

    /// <summary>The plain and tiled kernels of one operand and output format, each loaded at its first launch.</summary>
    private sealed class Kernels<T, TW, TC, TO> where T : unmanaged where TW : struct, IOperandWidening<T> where TC : unmanaged where TO : struct, IResultFormat<TC>
    {
        private Action<Index3D, ArrayView<T>, ArrayView<T>, ArrayView<TC>, DeviceGemmArgs>? _plain;
        private Action<KernelConfig, ArrayView<T>, ArrayView<T>, ArrayView<TC>, DeviceGemmArgs>? _tiled;

        /// <summary>Checks the shape and queues its products on the owner's accelerator, plain or tiled as the owner runs them.</summary>
        public void Launch(IlgpuGemm owner, in GemmShape shape, ArrayView<T> a, ArrayView<T> b, ArrayView<TC> c)
        {
            shape.Check(a.Length, b.Length, c.Length);
            if (shape.M == 0 || shape.N == 0 || shape.Batch == 0) return;
            var args = new DeviceGemmArgs(shape);
            var accelerator = owner._accelerator;
            if (owner._plain)
                (_plain ??= accelerator.LoadAutoGroupedStreamKernel<Index3D, ArrayView<T>, ArrayView<T>, ArrayView<TC>, DeviceGemmArgs>(
                    GemmKernels.Plain<T, TW, TC, TO>))(new Index3D(shape.Batch, shape.M, shape.N), a, b, c, args);
            else
                (_tiled ??= accelerator.LoadStreamKernel<ArrayView<T>, ArrayView<T>, ArrayView<TC>, DeviceGemmArgs>(GemmKernels.Tiled<T, TW, TC, TO>))(
                    owner.TiledConfig(shape), a, b, c, args);
        }
    }

    /// <summary>T x T groups over C's tiles (grid: N / T, M / T, batch), with shared memory for one tile of each operand.</summary>
    private KernelConfig TiledConfig(in GemmShape shape)
    {
        int t = Tile;
        return new KernelConfig(new Index3D((shape.N + t - 1) / t, (shape.M + t - 1) / t, shape.Batch), new Index3D(t, t, 1),
            SharedMemoryConfig.RequestDynamic<float>(2 * t * t));
    }

    public void Dispose()
    {
    }
}
