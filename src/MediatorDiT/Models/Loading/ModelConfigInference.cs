using System.Globalization;
using MediatorDiT.IO;

namespace MediatorDiT.Models;

/// <summary>
/// Reads a SiT/DiT config off a state dict that carries none (the released DiT and SiT checkpoints are
/// bare state dicts): patch size and input channels from x_embedder.proj.weight (D, C, p, p); hidden size
/// D; depth from the blocks.i keys; attention from block 0's keys (the first kind of
/// <see cref="AttentionKinds.All"/> whose marker key is there: attn.an_bias (heads, n, 7, 7) means mediator
/// attention with n mediators, else attn.qkv full attention); heads as the attention weights show them
/// (<see cref="AttentionSpec.ReadShapes"/>: an_bias), else <c>numHeads</c>, else the standard count of that
/// hidden width (S 384/6, B 768/12, L 1024/16, XL 1152/16); mlp_ratio from mlp.fc1;
/// learn_sigma from final_layer.linear (p p 2C rows); num_classes from y_embedder.embedding_table rows - 1
/// (the null class of guidance); input_size from pos_embed's N tokens: sqrt(N) p. The family is not in
/// the keys (DiT and SiT share them) and is the caller's (<see cref="ModelFamilies.Resolve"/>).
/// </summary>
public static class ModelConfigInference
{
    private const string PatchKey = "x_embedder.proj.weight";
    private const string PosKey = "pos_embed";
    private const string TableKey = "y_embedder.embedding_table.weight";
    private const string FinalKey = "final_layer.linear.weight";

    /// <summary>Standard hidden widths and their head counts (the registry's S, B, L, XL).</summary>
    private static readonly Dictionary<int, int> HeadsByHidden = new() { [384] = 6, [768] = 12, [1024] = 16, [1152] = 16 };

    /// <summary>
    /// The config of the weights in <paramref name="state"/>, as the class summary says, with the given
    /// <paramref name="family"/>; <paramref name="numHeads"/> gives the head count where the weights do not
    /// show it (and must agree where they do). Throws a <see cref="MediatorDiTException"/> prefixed with
    /// <paramref name="source"/> when a key is missing or has the wrong shape.
    /// </summary>
    public static ModelConfig Infer(IReadOnlyDictionary<string, StoredTensor> state, ModelFamily family, string source, int? numHeads = null)
    {
        int[] patch = Shape(state, PatchKey, 4, source);
        int hidden = patch[0], channels = patch[1], p = patch[2];
        if (patch[3] != p)
            throw new MediatorDiTException($"{source}: '{PatchKey}' has shape [{StoredTensor.FormatShape(patch)}], but square patches (D, C, p, p) were expected.");

        int depth = 0;
        while (state.ContainsKey($"blocks.{depth}.mlp.fc1.weight")) depth++;
        if (depth == 0)
            throw new MediatorDiTException($"{source}: has no 'blocks.0.mlp.fc1.weight', so it is not a SiT/DiT state dict (or its keys carry a prefix such as 'module.').");

        var kind = AttentionKinds.Recognise(state)
            ?? throw new MediatorDiTException($"{source}: block 0 has {AttentionKinds.NoMarkerPhrase()}.");
        var shown = kind.ReadShapes(state, source);
        int mediators = shown.MediatorNum ?? 64, heads;
        if (shown.NumHeads is int fromWeights) heads = fromWeights;
        else if (numHeads is int given) heads = given;
        else if (!HeadsByHidden.TryGetValue(hidden, out heads))
            throw new MediatorDiTException(string.Create(CultureInfo.InvariantCulture,
                $"{source}: hidden size {hidden} is not one of the standard sizes (384, 768, 1024, 1152), and the number of attention heads of full attention is not visible in the weights; pass --num-heads (or --config C.json)."));
        if (numHeads is int asked && asked != heads)
            throw new MediatorDiTException($"{source}: {shown.HeadsShownBy} say {heads} heads, but --num-heads {asked} was given.");

        int[] fc1 = Shape(state, "blocks.0.mlp.fc1.weight", 2, source);
        int[] table = Shape(state, TableKey, 2, source);
        if (table[0] < 2)
            throw new MediatorDiTException($"{source}: '{TableKey}' has {table[0]} rows, but a class table with at least one class and the null class was expected.");
        int[] final = Shape(state, FinalKey, 2, source);
        int outChannels = final[0] / (p * p);
        if (outChannels * p * p != final[0] || (outChannels != channels && outChannels != 2 * channels))
            throw new MediatorDiTException($"{source}: '{FinalKey}' has {final[0]} rows, but patch {p} with {channels} channels needs {p * p * channels} or, with learned sigma, {2 * p * p * channels}.");

        int[] pos = Shape(state, PosKey, 3, source);
        int grid = (int)Math.Round(Math.Sqrt(pos[1]));
        if (grid * grid != pos[1])
            throw new MediatorDiTException($"{source}: '{PosKey}' holds {pos[1]} tokens, which is not a square grid.");

        return new ModelConfig
        {
            InputSize = grid * p,
            PatchSize = p,
            InChannels = channels,
            HiddenSize = hidden,
            Depth = depth,
            NumHeads = heads,
            MlpRatio = (double)fc1[0] / hidden,
            NumClasses = table[0] - 1,
            LearnSigma = outChannels == 2 * channels,
            MediatorNum = mediators,
            Attention = kind.Kind,
            Family = family,
        }.Validate(source);
    }

    /// <summary>The image side in pixels a config generates: 8 x input_size for latent (4-channel) models, input_size for pixel models.</summary>
    public static int ImageSize(ModelConfig config) => config.InChannels is 1 or 3 ? config.InputSize : 8 * config.InputSize;

    /// <summary>The shape of <paramref name="key"/>, which must exist and have <paramref name="rank"/> axes; else an error naming the key.</summary>
    internal static int[] Shape(IReadOnlyDictionary<string, StoredTensor> state, string key, int rank, string source)
    {
        if (!state.TryGetValue(key, out var tensor))
            throw new MediatorDiTException($"{source}: has no '{key}', so it is not a SiT/DiT state dict whose config can be read from its shapes ({state.Count} keys{Sample(state)}).");
        if (tensor.Shape.Length != rank)
            throw new MediatorDiTException($"{source}: '{key}' has shape [{tensor.ShapeString}], but {rank} axes were expected.");
        return tensor.Shape;
    }

    private static string Sample(IReadOnlyDictionary<string, StoredTensor> state) =>
        state.Count == 0 ? "" : ", e.g. " + string.Join(", ", state.Keys.Take(3).Select(k => $"'{k}'"));
}
