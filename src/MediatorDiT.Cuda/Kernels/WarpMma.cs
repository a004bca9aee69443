using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace MediatorDiT.Cuda.Kernels;

/// <summary>
/// A warp's m16n8k16 bf16 tile: four fp32 values of the 16 x 8 accumulator C (or D) per lane. Lane l = 4 g + t (g the
/// group, t the thread in it) holds C0, C1 at row g, columns 2t and 2t + 1, and C2, C3 at row g + 8, the same columns
/// (PTX ISA, "Matrix Fragments for mma.m16n8k16").
/// </summary>
internal struct MmaAccumulator
{
    public float C0, C1, C2, C3;
}

/// <summary>
/// A lane's share of the 16 x 16 bf16 operand A, two bf16 values a register (the lower column in the lower half):
/// A0 row g, columns 2t, 2t + 1; A1 row g + 8, the same columns; A2 row g, columns 2t + 8, 2t + 9; A3 row g + 8, those.
/// </summary>
internal struct MmaOperandA
{
    public uint A0, A1, A2, A3;
}

/// <summary>
/// D = A B + C for one warp on the tensor cores: A 16 x 16 bf16 (<see cref="MmaOperandA"/>), B 16 x 8 bf16 given per lane
/// as b0 (rows 2t, 2t + 1 of column g) and b1 (rows 2t + 8, 2t + 9 of column g), C and D fp32 (<see cref="MmaAccumulator"/>).
/// On CUDA one `mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32` instruction (sm_80 and later) through ILGPU's inline
/// PTX; on every other accelerator (the CPU accelerator the tests run on, with 32-lane warps) the same fragments are
/// exchanged by warp shuffles and multiplied in fp32, so a kernel written on these fragments runs, and is tested, without
/// a GPU. The card adds the 16 products in an order of its own (its accumulation is not specified to the bit), the
/// emulation in k order onto C: the two agree to fp32 rounding, not bit for bit. All 32 lanes must call it together.
/// </summary>
internal static class WarpMma
{
    /// <summary>The instruction, accumulating into C in place.</summary>
    private const string Instruction =
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};";

    /// <summary>c = a b + c (see the class).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Bf16(ref MmaAccumulator c, MmaOperandA a, uint b0, uint b1)
    {
        if (CudaAsm.IsSupported)
        {
            Ref<float> c0 = c.C0, c1 = c.C1, c2 = c.C2, c3 = c.C3;
            Input<uint> a0 = a.A0, a1 = a.A1, a2 = a.A2, a3 = a.A3, x0 = b0, x1 = b1;
            CudaAsm.EmitRef(Instruction, ref c0, ref c1, ref c2, ref c3, ref a0, ref a1, ref a2, ref a3, ref x0, ref x1);
            c.C0 = c0.Value;
            c.C1 = c1.Value;
            c.C2 = c2.Value;
            c.C3 = c3.Value;
        }
        else Emulated(ref c, a, b0, b1);
    }

    /// <summary>
    /// The instruction's arithmetic from the fragments' layout: for each pair of k (one register of A and of B), the lane
    /// fetches A's rows g and g + 8 from lane 4 g + (k mod 8) / 2 and B's columns 2t and 2t + 1 from lanes 4 (2t) + (k mod 8) / 2
    /// and 4 (2t + 1) + (k mod 8) / 2, and adds the products in k order.
    /// </summary>
    private static void Emulated(ref MmaAccumulator c, MmaOperandA a, uint b0, uint b1)
    {
        int lane = Warp.LaneIdx, g = lane >> 2, t = lane & 3;
        float c0 = c.C0, c1 = c.C1, c2 = c.C2, c3 = c.C3;
        for (int pair = 0; pair < 8; pair++)
        {
            bool high = pair >= 4; // k = 2 pair, 2 pair + 1 in the second half of A's columns and B's rows
            int source = pair & 3;
            uint rowG = Warp.Shuffle(high ? a.A2 : a.A0, 4 * g + source);
            uint rowG8 = Warp.Shuffle(high ? a.A3 : a.A1, 4 * g + source);
            uint column0 = Warp.Shuffle(high ? b1 : b0, 4 * (2 * t) + source);
            uint column1 = Warp.Shuffle(high ? b1 : b0, 4 * (2 * t + 1) + source);
            for (int half = 0; half < 2; half++)
            {
                int shift = 16 * half;
                float x = Low(rowG >> shift), y = Low(rowG8 >> shift), u = Low(column0 >> shift), v = Low(column1 >> shift);
                c0 += x * u;
                c1 += x * v;
                c2 += y * u;
                c3 += y * v;
            }
        }
        c.C0 = c0;
        c.C1 = c1;
        c.C2 = c2;
        c.C3 = c3;
    }

    /// <summary>The bf16 value in the lower half of <paramref name="bits"/>, widened.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Low(uint bits) => Kernels.Bf16.Widen((ushort)bits);

    /// <summary>
    /// Two floats rounded to bf16 (<see cref="Kernels.Bf16.Round"/>: to nearest, ties to even, NaN to 0x7FFF) in one
    /// register, <paramref name="low"/> in the lower half. On CUDA one `cvt.rn.bf16x2.f32` (sm_80 and later; its first
    /// source goes to the upper half), the same rounding as the integer one beside it, which takes about five integer
    /// instructions a value.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Pack(float low, float high)
    {
        if (CudaAsm.IsSupported)
        {
            Output<uint> packed = default;
            Input<float> upper = high, lower = low;
            CudaAsm.EmitRef("cvt.rn.bf16x2.f32 %0, %1, %2;", ref packed, ref upper, ref lower);
            return packed.Value;
        }
        return Kernels.Bf16.Round(low) | ((uint)Kernels.Bf16.Round(high) << 16);
    }
}
