using MediatorDiT.Models;
using MediatorDiT.Nn;

namespace MediatorDiT.Training;

/// <summary>
/// What the trainer optimises: one network, or a shared-weight ladder whose members are drawn per step.
/// Gives every distinct parameter once with the name it has in a checkpoint.
/// </summary>
public sealed class TrainableNetwork : IParameterSet
{
    /// <summary>The networks: one, or one per mediator count of a shared-weight ladder.</summary>
    public IReadOnlyList<SiTModel> Members { get; }
    /// <summary>Each member's mediator count (empty for a full-attention network).</summary>
    public IReadOnlyList<int> MediatorCounts { get; }
    /// <summary>Every distinct parameter once (shared weights once, each member's own mediator biases).</summary>
    public IReadOnlyList<Parameter> Parameters { get; }
    private readonly Func<Parameter, string> _nameOf;

    private TrainableNetwork(IReadOnlyList<SiTModel> members, IReadOnlyList<int> counts, IReadOnlyList<Parameter> parameters, Func<Parameter, string> nameOf)
    {
        Members = members;
        MediatorCounts = counts;
        Parameters = parameters;
        _nameOf = nameOf;
    }

    /// <summary>The network of <paramref name="config"/> with the given mediator counts, before weight initialisation.</summary>
    /// <param name="config">The network config.</param>
    /// <param name="mediators">None: full attention; one: a mediator model; several: a shared-weight ladder.</param>
    public static TrainableNetwork Create(ModelConfig config, IReadOnlyList<int> mediators)
    {
        if (mediators.Count <= 1)
        {
            var model = new SiTModel(AttentionKinds.WithMediators(config, mediators.Count == 0 ? null : mediators[0]));
            return new TrainableNetwork([model], mediators.ToArray(), model.Parameters, p => p.Name);
        }
        var ladder = new SharedMediatorLadder(config, mediators);
        return new TrainableNetwork(ladder.Members, mediators.ToArray(), ladder.Parameters, p => ladder.CombinedNames[p]);
    }

    /// <summary>The name <paramref name="p"/> has in a training checkpoint (the state-dict key; for a ladder the combined name).</summary>
    /// <param name="p">One of <see cref="Parameters"/>.</param>
    public string NameOf(Parameter p) => _nameOf(p);

    /// <summary>Sets every gradient to zero (frozen parameters have none).</summary>
    public void ZeroGrad()
    {
        foreach (var p in Parameters) p.Grad?.Zero();
    }
}
