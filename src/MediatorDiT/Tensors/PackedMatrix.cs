namespace MediatorDiT.Tensors;

/// <summary>
/// The right-hand operand op(B) (k x n) of a product, packed once into the managed kernel's sliver layout
/// so that many products with the same B skip packing it again: the fused MLP chain runs fc1 and fc2 on
/// 4-8 row blocks per layer, and with the weights packed once per forward instead of once per block the
/// chain took about 7% less CPU time (SiT-S/2, batch 4). Filled by <see cref="Gemm.TryPack"/>, used by the Gemm.Sgemm overload that takes it;
/// the buffer is kept and reused between packings (no allocation once it is large enough).
/// </summary>
internal sealed unsafe class PackedMatrix
{
    private float[]? _buffer;

    /// <summary>Columns n and depth k of the packed op(B); 0 while nothing is packed.</summary>
    public int Columns { get; private set; }
    public int Depth { get; private set; }

    /// <summary>Whether op(B) was packed from B stored [n, k] (transposed) or [k, n].</summary>
    public bool TransB { get; private set; }

    /// <summary>True when the contents were packed for the 256-bit kernel (16-wide slivers).</summary>
    internal bool Vector256 { get; private set; }

    /// <summary>False after <see cref="Clear"/> or a declined <see cref="Gemm.TryPack"/>: products then take the plain path.</summary>
    public bool IsPacked { get; private set; }

    /// <summary>The aligned start of the packed data (valid while <see cref="IsPacked"/>).</summary>
    internal float* Pointer { get; private set; }

    internal void Clear() => IsPacked = false;

    /// <summary>Sizes the buffer for <paramref name="floats"/> floats and records what is about to be packed into it.</summary>
    internal float* Prepare(int n, int k, bool transB, bool vector256, long floats)
    {
        Pointer = ManagedGemm.Buffer(ref _buffer, floats);
        (Columns, Depth, TransB, Vector256, IsPacked) = (n, k, transB, vector256, true);
        return Pointer;
    }
}
