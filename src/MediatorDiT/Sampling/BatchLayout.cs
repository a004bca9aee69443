namespace MediatorDiT.Sampling;

/// <summary>
/// How a sampler's state rows map to samples: <see cref="Samples"/> samples, each owning
/// <see cref="RowsPerSample"/> rows; copy j of sample s is row s + j * Samples (the official guidance
/// layout [conditional half; unconditional half]).
/// </summary>
public readonly record struct BatchLayout(int Samples, int RowsPerSample)
{
    /// <summary>All state rows: Samples * RowsPerSample.</summary>
    public int Rows => Samples * RowsPerSample;

    /// <summary>The state row of copy <paramref name="copy"/> of sample <paramref name="sample"/>.</summary>
    /// <param name="sample">Sample index in [0, Samples).</param>
    /// <param name="copy">Copy index in [0, RowsPerSample); under guidance 0 is conditional, 1 unconditional.</param>
    public int Row(int sample, int copy) => sample + copy * Samples;
}
