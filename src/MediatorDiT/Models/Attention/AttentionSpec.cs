using MediatorDiT.IO;

namespace MediatorDiT.Models;

/// <summary>
/// Everything the library knows about one <see cref="AttentionKind"/>, in one place: how it is named, the
/// module it builds, what it costs, which configs it accepts and how its checkpoints are recognised and read.
/// One implementation per kind lives beside its module (<c>Models/Attention/Full</c>,
/// <c>Models/Attention/Mediator</c>); <see cref="AttentionKinds"/> maps the enum to them. Every kind projects
/// its input with qkv (3D) and its output with proj (D), as timm's attention does; the kinds differ in what
/// happens between the two.
/// </summary>
internal abstract class AttentionSpec
{
    private protected AttentionSpec() { }

    /// <summary>The enum member configs name this kind by (JSON "attention").</summary>
    public abstract AttentionKind Kind { get; }

    /// <summary>"full" or "mediator": the <see cref="IAttention.Kind"/> of its modules, and the value init_from compares.</summary>
    public abstract string Name { get; }

    /// <summary>"full attention" or "mediator attention", as messages name the kind without a config.</summary>
    public abstract string DisplayName { get; }

    /// <summary>
    /// Whether mediator_num shapes the network. Only models of such a kind form a ladder (the ladder switches
    /// between mediator counts), and only they record a mediator count.
    /// </summary>
    public abstract bool UsesMediatorCount { get; }

    /// <summary>0 when the kind has no mediators, else the config's mediator count (as run records store it).</summary>
    public int MediatorCount(ModelConfig config) => UsesMediatorCount ? config.MediatorNum : 0;

    /// <summary>"full attention" or "16 mediators", as the CLI and plots label a model.</summary>
    public abstract string Describe(ModelConfig config);

    /// <summary>"full" or "m16", as the ladder's files and the demo name their models.</summary>
    public abstract string ShortName(ModelConfig config);

    /// <summary>"full attention" or "mediator attention (16 mediators)", as the FLOP table's heading names it.</summary>
    public abstract string Title(ModelConfig config);

    /// <summary>The attention module of one block, its parameters named <paramref name="prefix"/> + the state-dict key (prefix e.g. "blocks.0.attn.").</summary>
    public abstract IAttention Create(string prefix, ModelConfig config);

    /// <summary>
    /// Per-image FLOPs (multiply-accumulates) of one block's attention between the qkv and the output
    /// projection, by part, in the order <see cref="FlopCounter.Count"/> lists them. The config is valid.
    /// </summary>
    public abstract IReadOnlyList<FlopComponent> MixingFlops(ModelConfig config);

    /// <summary>
    /// Per-image FLOPs of one block's token-mixing matrix products only (what grows with the token count:
    /// Q K^T and A V for full attention, the four mediator products for mediator attention).
    /// </summary>
    public abstract double ProductFlops(ModelConfig config);

    /// <summary>Per-image FLOPs of one block's whole attention: qkv projection (3 N D^2), <see cref="MixingFlops"/>, output projection (N D^2).</summary>
    public double FlopsPerBlock(ModelConfig config)
    {
        double n = config.NumTokens, d = config.HiddenSize;
        return 4 * n * d * d + MixingFlops(config).Sum(part => part.Flops);
    }

    /// <summary>
    /// The sentence (without the file prefix) naming the first of the kind's fields that is out of range, or
    /// null when the config suits the kind. Called by <see cref="ModelConfig.Validate"/> after the common fields passed.
    /// </summary>
    public abstract string? Validate(ModelConfig config);

    /// <summary>Values of one image's attention maps (the kind's largest activation), and a phrase naming them and the fields they come from.</summary>
    public abstract (long Elements, string What) AttentionMaps(ModelConfig config);

    /// <summary>Parameters of one block's attention, to within its biases: the qkv and output projections' 4 D^2.</summary>
    public virtual long ParameterEstimatePerBlock(ModelConfig config) => 4L * config.HiddenSize * config.HiddenSize;

    /// <summary>
    /// The key, relative to a block ("attn.an_bias"), whose presence in block 0 marks a checkpoint of this
    /// kind; <see cref="AttentionKinds.Recognise"/> tries the kinds in <see cref="AttentionKinds.All"/>'s order.
    /// </summary>
    public abstract string MarkerKey { get; }

    /// <summary>Whether block 0 of <paramref name="state"/> has this kind's <see cref="MarkerKey"/>.</summary>
    public bool Recognises(IReadOnlyDictionary<string, StoredTensor> state) => state.ContainsKey("blocks.0." + MarkerKey);

    /// <summary>
    /// What the attention weights of a checkpoint of this kind show of its config (heads, mediator count);
    /// throws a <see cref="MediatorDiTException"/> prefixed with <paramref name="source"/> when one of them has the wrong rank.
    /// </summary>
    public abstract AttentionShapes ReadShapes(IReadOnlyDictionary<string, StoredTensor> state, string source);

    /// <summary>
    /// Block-0 weights whose shapes the config fixes beyond the common ones (heads, mediators), each with the
    /// fields that decide it and a test of the stored shape, so that a config that does not describe the
    /// weights fails before the network is allocated.
    /// </summary>
    internal virtual IEnumerable<(string Key, string Fields, Func<int[], bool> Fits)> ExpectedShapes(ModelConfig config) => [];

    /// <summary>
    /// For resolution fine-tuning: <paramref name="stored"/> carried to a token grid of side
    /// <paramref name="grid"/> when <paramref name="key"/> is one of this kind's grid-sized weights, else null.
    /// </summary>
    internal virtual StoredTensor? ResizeToGrid(string key, StoredTensor stored, int grid) => null;
}

/// <summary>
/// What a checkpoint's attention weights show of the config: the number of heads and of mediators where
/// they are visible (null where not), and what shows the heads ("the mediator biases"), for messages.
/// </summary>
public sealed record AttentionShapes(int? NumHeads, int? MediatorNum, string? HeadsShownBy)
{
    /// <summary>Weights that show neither heads nor mediators (full attention's qkv and proj).</summary>
    public static AttentionShapes None { get; } = new(null, null, null);
}
