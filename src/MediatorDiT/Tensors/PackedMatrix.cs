using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace MediatorDiT.Tensors;

/// <summary>
/// The right-hand operand op(B) (k x n) of a product, packed once into the managed kernel's sliver layout
/// so that many products with the same B skip packing it again: the fused MLP chain runs fc1 and fc2 on
/// 4-8 row blocks per layer, and with the weights packed once per forward instead of once per block the
/// chain took about 7% less CPU time (SiT-S/2, batch 4). Filled by <see cref="Gemm.TryPack"/>, used by the Gemm.Sgemm overload that takes it;
/// the buffer is kept and reused between packings (no allocation once it is large enough).
/// </summary>
public sealed unsafe class PackedMatrix
{
    private float[] _buffer = [];

    /// <summary>Columns n and depth k of the packed op(B); 0 while nothing is packed.</summary>
    public int Columns { get; private set; }
    public int Depth { get; private set; }

    /// <summary>True when the contents were packed for the 256-bit kernel (16-wide slivers).</summary>
    internal bool Vector256 { get; private set; }

    /// <summary>False after <see cref="Clear"/> or a declined <see cref="Gemm.TryPack"/>: products then take the plain path.</summary>
    public bool IsPacked { get; private set; }

    internal void Clear() => IsPacked = false;

    /// <summary>64-byte aligned start of a pinned buffer of at least <paramref name="floats"/> floats, for (re)packing.</summary>
    internal float* Prepare(int n, int k, bool vector256, long floats)
    {
        if (_buffer.Length < floats + 16)
            _buffer = GC.AllocateUninitializedArray<float>(checked((int)(floats + 16)), pinned: true);
        Columns = n;
        Depth = k;
        Vector256 = vector256;
        IsPacked = true;
        return Pointer;
    }

    /// <summary>The aligned start of the packed data (the array is pinned, so it never moves).</summary>
    internal float* Pointer
    {
        get
        {
            nint p = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_buffer));
            return (float*)((p + 63) & ~(nint)63);
        }
    }
}
