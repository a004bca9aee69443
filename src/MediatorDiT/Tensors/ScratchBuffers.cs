namespace MediatorDiT.Tensors;

/// <summary>
/// Per-thread scratch arrays for kernels that run inside parallel loops (attention tiles, packing).
/// Each thread keeps its arrays and grows them only when a larger size is asked for, so steady-state
/// calls allocate nothing. Slot numbers let one kernel hold several buffers at once.
/// </summary>
internal static class ScratchBuffers
{
    [ThreadStatic] private static float[][]? _slots;

    public static float[] Get(int slot, int length)
    {
        var slots = _slots ??= new float[8][];
        var buffer = slots[slot];
        if (buffer is null || buffer.Length < length)
            slots[slot] = buffer = GC.AllocateUninitializedArray<float>(length, pinned: length * 4 >= 85_000);
        return buffer;
    }
}
