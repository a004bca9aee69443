namespace MediatorDiT.Data;

/// <summary>
/// A labelled set of samples of one shape (C, H, W), read by index. Implementations must allow
/// concurrent <see cref="Get"/> calls from several threads (the loader fills a batch in parallel).
/// Pixel datasets return values in [-1, 1]; latent datasets return the stored latents unchanged.
/// </summary>
public interface IDataset
{
    /// <summary>The number of samples; indices run from 0 to Count - 1.</summary>
    int Count { get; }

    /// <summary>Labels lie in [0, NumClasses); the model's class-embedding table has this many rows.</summary>
    int NumClasses { get; }

    /// <summary>The shape (C, H, W) every sample has.</summary>
    SampleShape SampleShape { get; }

    /// <summary>Writes sample <paramref name="index"/> (C, H, W row-major, length SampleShape.Length) into <paramref name="sample"/>.</summary>
    void Get(int index, Span<float> sample, out int label);
}
