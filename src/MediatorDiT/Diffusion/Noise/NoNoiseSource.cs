namespace MediatorDiT.Diffusion;

/// <summary>For deterministic runs (the ODE): supplies no draws and refuses a run that needs some.</summary>
public sealed class NoNoiseSource : INoiseSource
{
    public static NoNoiseSource Instance { get; } = new();

    private NoNoiseSource() { }

    public void Prepare(ReadOnlySpan<int> drawShape, int drawCount)
    {
        if (drawCount > 0)
            throw new MediatorDiTException($"this run was given no noise draws but its sampler takes {drawCount}; give a noise source.");
    }

    public void Next(Span<float> destination) =>
        throw new MediatorDiTException("this run was given no noise draws but its sampler asked for one; give a noise source.");
}
