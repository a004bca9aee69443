using MediatorDiT.Tensors;

namespace MediatorDiT.Nn;

/// <summary>
/// A named model parameter. <see cref="Name"/> equals the PyTorch state-dict key, so checkpoints
/// round-trip. Frozen parameters (pos_embed) have no gradient.
/// </summary>
public sealed class Parameter
{
    public string Name { get; }
    public Tensor Value { get; private set; }
    public Tensor? Grad { get; private set; }
    public bool Trainable => Grad is not null;

    public Parameter(string name, int[] shape, bool trainable = true)
    {
        Name = name;
        Value = new Tensor(shape);
        Grad = trainable ? new Tensor(shape) : null;
    }

    /// <summary>
    /// Makes this parameter use another's value and gradient storage, so two networks share a weight
    /// (a shared-weight mediator ladder). Shapes must agree.
    /// </summary>
    public void ShareStorageWith(Parameter source)
    {
        if (!Value.SameShape(source.Value))
            throw new ArgumentException($"cannot share '{source.Name}' [{source.Value.ShapeString}] with '{Name}' [{Value.ShapeString}].");
        Value = source.Value;
        Grad = source.Grad;
    }

    public override string ToString() => $"{Name} [{Value.ShapeString}]";
}

/// <summary>An ordered collection of parameters, in the order PyTorch's state_dict lists them.</summary>
public interface IParameterSet
{
    IReadOnlyList<Parameter> Parameters { get; }
}
