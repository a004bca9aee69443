using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using MediatorDiT.Nn;
using MediatorDiT.Tensors;

namespace MediatorDiT.Models;

/// <summary>
/// Class embedding table (num_classes + 1, D); the extra row (label = num_classes) is the null label
/// used for classifier-free guidance. During training, labels are dropped to null with probability p.
/// </summary>
internal sealed class LabelEmbedder
{
    private readonly int _d;
    public int NumClasses { get; }
    public double DropoutProb { get; }
    public Parameter Table { get; }
    private int[] _labels = [];

    public LabelEmbedder(int numClasses, int dim, double dropoutProb)
    {
        _d = dim;
        NumClasses = numClasses;
        DropoutProb = dropoutProb;
        int rows = numClasses + (dropoutProb > 0 ? 1 : 0);
        Table = new Parameter("y_embedder.embedding_table.weight", [rows, dim]);
    }

    /// <summary>Replaces each label by the null label with probability DropoutProb (training only).</summary>
    public int[] DropLabels(ReadOnlySpan<int> labels, RandomSource rng)
    {
        var result = labels.ToArray();
        for (int i = 0; i < result.Length; i++)
            if (rng.NextDouble() < DropoutProb) result[i] = NumClasses;
        return result;
    }

    public void Forward(ReadOnlySpan<int> labels, Tensor output)
    {
        int rows = Table.Value.Dim(0);
        _labels = labels.ToArray();
        for (int b = 0; b < labels.Length; b++)
        {
            int y = labels[b];
            if ((uint)y >= (uint)rows)
                throw new MediatorDiTException($"class label {y} is out of range: the model has {NumClasses} classes (0..{NumClasses - 1}, {NumClasses} = null label).");
            Table.Value.Span.Slice(y * _d, _d).CopyTo(output.Span.Slice(b * _d, _d));
        }
    }

    public void Backward(Tensor dOutput)
    {
        var g = Table.Grad!.Span;
        for (int b = 0; b < _labels.Length; b++)
        {
            var row = g.Slice(_labels[b] * _d, _d);
            TensorPrimitives.Add(row, dOutput.Span.Slice(b * _d, _d), row);
        }
    }
}
