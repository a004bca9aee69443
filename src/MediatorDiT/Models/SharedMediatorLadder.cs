using MediatorDiT.Nn;

namespace MediatorDiT.Models;

/// <summary>
/// One network for several mediator counts: every weight is shared except the mediator position biases
/// (an/na/ah/aw/ha/wa), which each count has its own of. Each member is an ordinary <see cref="SiTModel"/>
/// with the official parameter names, so a member exports as a standard checkpoint and the ladder feeds
/// the dynamic sampler directly; the shared tensors exist once in memory.
/// In a combined state dict a count's biases are stored as "blocks.{i}.attn.m{n}.{bias}".
/// </summary>
internal sealed class SharedMediatorLadder : IParameterSet
{
    public IReadOnlyList<SiTModel> Members { get; }
    public IReadOnlyList<int> Counts { get; }

    /// <summary>Every distinct parameter once, under its combined-state-dict name.</summary>
    public IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>Combined-state-dict name of each distinct parameter.</summary>
    public IReadOnlyDictionary<Parameter, string> CombinedNames { get; }

    public SharedMediatorLadder(ModelConfig config, IReadOnlyList<int> counts)
    {
        if (counts.Count == 0) throw new MediatorDiTException("a shared mediator ladder needs at least one mediator count.");
        if (counts.Zip(counts.Skip(1)).Any(p => p.First >= p.Second))
            throw new MediatorDiTException($"mediator counts must increase, got {string.Join(",", counts)}.");
        Counts = counts.ToArray();
        var members = counts.Select(n => new SiTModel(AttentionKinds.WithMediators(config, n))).ToArray();
        var first = members[0];
        foreach (var member in members.Skip(1))
            foreach (var p in member.Parameters)
                if (!IsMediatorBias(p.Name)) p.ShareStorageWith(first[p.Name]);
        Members = members;

        var names = new Dictionary<Parameter, string>(ReferenceEqualityComparer.Instance);
        var list = new List<Parameter>();
        foreach (var p in first.Parameters)
            if (!IsMediatorBias(p.Name)) { names[p] = p.Name; list.Add(p); }
        for (int i = 0; i < members.Length; i++)
            foreach (var p in members[i].Parameters.Where(p => IsMediatorBias(p.Name)))
            {
                names[p] = CombinedBiasName(p.Name, counts[i]);
                list.Add(p);
            }
        Parameters = list;
        CombinedNames = names;
    }

    public static bool IsMediatorBias(string name) =>
        name.Contains(".attn.") && MediatorAttentionKind.PositionBiasNames.Any(b => name.EndsWith("." + b));

    /// <summary>"blocks.0.attn.an_bias" for 16 mediators -> "blocks.0.attn.m16.an_bias".</summary>
    public static string CombinedBiasName(string officialName, int count)
    {
        int dot = officialName.LastIndexOf('.');
        return $"{officialName[..dot]}.m{count}{officialName[dot..]}";
    }
}
