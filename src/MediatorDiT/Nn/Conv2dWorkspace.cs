namespace MediatorDiT.Nn;

/// <summary>
/// Reusable im2col buffers for <see cref="Conv2d"/>, one per worker, grown on demand and kept so
/// repeated convolutions allocate nothing. Not thread-safe: one convolution at a time.
/// </summary>
public sealed class Conv2dWorkspace
{
    private float[][] _buffers = [];

    /// <summary>Floats currently held across all buffers.</summary>
    public long HeldFloats => _buffers.Sum(b => (long)b.Length);

    /// <summary>Makes <paramref name="count"/> buffers of at least <paramref name="length"/> floats available.</summary>
    internal void Reserve(int count, int length)
    {
        if (_buffers.Length < count) Array.Resize(ref _buffers, count);
        for (int i = 0; i < count; i++)
            if (_buffers[i] is null || _buffers[i].Length < length)
                _buffers[i] = GC.AllocateUninitializedArray<float>(length, pinned: length * 4 >= 85_000);
    }

    internal float[] this[int slot] => _buffers[slot];

    /// <summary>Drops the buffers (the next convolution allocates again).</summary>
    public void Release() => _buffers = [];
}
