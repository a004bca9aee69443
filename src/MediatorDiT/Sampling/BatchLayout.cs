namespace MediatorDiT.Sampling;

/// <summary>
/// How a sampler's state rows map to samples: <see cref="Samples"/> samples, each owning
/// <see cref="RowsPerSample"/> rows; copy j of sample s is row s + j * Samples (the official guidance
/// layout [conditional half; unconditional half]).
/// </summary>
public readonly record struct BatchLayout(int Samples, int RowsPerSample)
{
    public int Rows => Samples * RowsPerSample;

    public int Row(int sample, int copy) => sample + copy * Samples;
}
