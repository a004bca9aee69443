using MediatorDiT.Tensors;

namespace MediatorDiT.Nn;

/// <summary>
/// A named model parameter. <see cref="Name"/> equals the PyTorch state-dict key, so checkpoints
/// round-trip. Frozen parameters (pos_embed) have no gradient.
/// </summary>
public sealed class Parameter
{
    private Tensor? _grad;
    private bool _trainable;

    public string Name { get; }
    public Tensor Value { get; private set; }

    /// <summary>
    /// The gradient (null for frozen parameters), allocated on first use: a model that only samples never
    /// holds a second copy of its weights (SiT-XL/2: 2.7 GB).
    /// </summary>
    public Tensor? Grad
    {
        get
        {
            if (!_trainable) return null;
            var g = Volatile.Read(ref _grad);
            if (g is not null) return g;
            Interlocked.CompareExchange(ref _grad, new Tensor(Value.Shape), null);
            return _grad;
        }
    }

    public bool Trainable => _trainable;

    public Parameter(string name, int[] shape, bool trainable = true)
    {
        Name = name;
        Value = new Tensor(shape);
        _trainable = trainable;
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
        _trainable = source._trainable;
        _grad = source.Grad;
    }

    public override string ToString() => $"{Name} [{Value.ShapeString}]";
}

/// <summary>An ordered collection of parameters, in the order PyTorch's state_dict lists them.</summary>
public interface IParameterSet
{
    IReadOnlyList<Parameter> Parameters { get; }
}
