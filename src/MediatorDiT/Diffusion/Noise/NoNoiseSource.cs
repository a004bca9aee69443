namespace MediatorDiT.Diffusion;

/// <summary>For deterministic runs (the ODE): supplies no draws and refuses a run that needs some.</summary>
public sealed class NoNoiseSource : INoiseSource
{
    /// <summary>The one instance (the source holds no state).</summary>
    public static NoNoiseSource Instance { get; } = new();

    private NoNoiseSource() { }

    /// <inheritdoc/>
    /// <remarks>Throws a <see cref="MediatorDiTException"/> when <paramref name="drawCount"/> is above 0.</remarks>
    public void Prepare(ReadOnlySpan<int> drawShape, int drawCount)
    {
        if (drawCount > 0)
            throw new MediatorDiTException($"this run was given no noise draws but its sampler takes {drawCount}; give a noise source.");
    }

    /// <inheritdoc/>
    /// <remarks>Always throws a <see cref="MediatorDiTException"/>.</remarks>
    public void Next(Span<float> destination) =>
        throw new MediatorDiTException("this run was given no noise draws but its sampler asked for one; give a noise source.");
}
