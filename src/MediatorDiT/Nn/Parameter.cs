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

    /// <summary>The state-dict key, e.g. "blocks.0.attn.qkv.weight".</summary>
    public string Name { get; }
    /// <summary>The weights, in PyTorch's layout (a Linear weight is [out, in]).</summary>
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

    /// <summary>False for frozen parameters (pos_embed), which have no <see cref="Grad"/> and are not optimised.</summary>
    public bool Trainable => _trainable;

    /// <summary>A zero-filled parameter; loading or initialisation fills it.</summary>
    /// <param name="name">The state-dict key.</param>
    /// <param name="shape">The weight shape, in PyTorch's layout.</param>
    /// <param name="trainable">False for a frozen parameter without a gradient.</param>
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

    /// <summary>The name and shape, e.g. "pos_embed [1, 256, 1152]".</summary>
    public override string ToString() => $"{Name} [{Value.ShapeString}]";
}

/// <summary>An ordered collection of parameters, in the order PyTorch's state_dict lists them.</summary>
public interface IParameterSet
{
    /// <summary>Every parameter, trainable or frozen, in state-dict order.</summary>
    IReadOnlyList<Parameter> Parameters { get; }
}
