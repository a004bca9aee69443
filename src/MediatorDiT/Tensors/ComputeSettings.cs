namespace MediatorDiT.Tensors;

/// <summary>Process-wide compute knobs: how many threads kernels may use.</summary>
public static class ComputeSettings
{
    private static int _threads = Environment.ProcessorCount;

    /// <summary>Threads used by parallel kernels (GEMM tiles, batch x heads loops). At least 1.</summary>
    public static int Threads
    {
        get => _threads;
        set => _threads = Math.Max(1, value);
    }
}
