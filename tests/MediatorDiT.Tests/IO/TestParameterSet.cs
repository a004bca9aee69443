using MediatorDiT.Nn;

namespace MediatorDiT.Tests.IO;

/// <summary>A model stand-in: just named parameters of given shapes.</summary>
public sealed class TestParameterSet : IParameterSet
{
    public IReadOnlyList<Parameter> Parameters { get; }

    public TestParameterSet(params (string Name, int[] Shape)[] parameters) =>
        Parameters = parameters.Select(p => new Parameter(p.Name, p.Shape)).ToList();

    public TestParameterSet(IEnumerable<Parameter> parameters) => Parameters = parameters.ToList();

    public Parameter this[string name] => Parameters.Single(p => p.Name == name);
}
