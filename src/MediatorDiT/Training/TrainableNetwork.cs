using MediatorDiT.Models;
using MediatorDiT.Nn;

namespace MediatorDiT.Training;

/// <summary>
/// What the trainer optimises: one network, or a shared-weight ladder whose members are drawn per step.
/// Gives every distinct parameter once with the name it has in a checkpoint.
/// </summary>
public sealed class TrainableNetwork : IParameterSet
{
    public IReadOnlyList<SiTModel> Members { get; }
    public IReadOnlyList<int> MediatorCounts { get; }
    public IReadOnlyList<Parameter> Parameters { get; }
    private readonly Func<Parameter, string> _nameOf;

    private TrainableNetwork(IReadOnlyList<SiTModel> members, IReadOnlyList<int> counts, IReadOnlyList<Parameter> parameters, Func<Parameter, string> nameOf)
    {
        Members = members;
        MediatorCounts = counts;
        Parameters = parameters;
        _nameOf = nameOf;
    }

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

    public string NameOf(Parameter p) => _nameOf(p);

    public void ZeroGrad()
    {
        foreach (var p in Parameters) p.Grad?.Zero();
    }
}
