using MediatorDiT.Data;

namespace MediatorDiT.Tests.Data;

/// <summary>Sample i is (C, H, W) with value i * 1000 + position, label i % classes: easy to recognise in a batch.</summary>
public sealed class IndexDataset(int count, int classes = 3, SampleShape? shape = null) : IDataset
{
    public int Count => count;

    public int NumClasses => classes;

    public SampleShape SampleShape { get; } = shape ?? new SampleShape(2, 2, 3);

    public void Get(int index, Span<float> sample, out int label)
    {
        for (int p = 0; p < sample.Length; p++) sample[p] = index * 1000 + p;
        label = index % classes;
    }

    public static float[] Expected(int index, SampleShape shape, bool flipped)
    {
        var values = new float[shape.Length];
        for (int p = 0; p < values.Length; p++) values[p] = index * 1000 + p;
        if (flipped) ImageTransforms.FlipHorizontal(values, shape);
        return values;
    }
}
