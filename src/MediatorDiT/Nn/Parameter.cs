using MediatorDiT.Tensors;

namespace MediatorDiT.Nn;

/// <summary>
/// A named model parameter. <see cref="Name"/> equals the PyTorch state-dict key, so checkpoints
/// round-trip. Frozen parameters (pos_embed) have no gradient.
/// </summary>
public sealed class Parameter
{
    public string Name { get; }
    public Tensor Value { get; }
    public Tensor? Grad { get; }
    public bool Trainable => Grad is not null;

    public Parameter(string name, int[] shape, bool trainable = true)
    {
        Name = name;
        Value = new Tensor(shape);
        Grad = trainable ? new Tensor(shape) : null;
    }

    public override string ToString() => $"{Name} [{Value.ShapeString}]";
}

/// <summary>An ordered collection of parameters, in the order PyTorch's state_dict lists them.</summary>
public interface IParameterSet
{
    IReadOnlyList<Parameter> Parameters { get; }
}
