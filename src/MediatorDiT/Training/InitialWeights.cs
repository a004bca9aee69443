using System.Text.RegularExpressions;
using MediatorDiT.IO;
using MediatorDiT.Models;

namespace MediatorDiT.Training;

/// <summary>
/// Starts a run from trained weights (init_from): a run checkpoint (its EMA weights), an exported
/// ema*.safetensors, or an official .pt (its "ema" entry, else "model", else a bare state dict). The weights
/// are carried to the run's token grid as the authors do for resolution fine-tuning
/// (<see cref="ResolutionResize"/>); everything else about the network must agree, and the first field that
/// does not is named.
/// </summary>
internal static partial class InitialWeights
{
    [GeneratedRegex(@"^blocks\.\d+\.attn\.m(\d+)\.[a-z]{2}_bias$")]
    private static partial Regex CombinedBiasPattern();

    [GeneratedRegex(@"^blocks\.(\d+)\.")]
    private static partial Regex BlockPattern();

    /// <summary>Loads the file's weights into every member of <paramref name="network"/>, resized to its grid.</summary>
    public static void LoadInto(string path, TrainableNetwork network, IProgress<string>? messages = null)
    {
        var (source, sourceConfig) = Read(path);
        for (int i = 0; i < network.Members.Count; i++)
        {
            var member = network.Members[i];
            if (sourceConfig is not null && sourceConfig.NumHeads != member.Config.NumHeads)
                throw new MediatorDiTException(
                    $"{path}: cannot initialise the run from it: its num_heads is {sourceConfig.NumHeads} but the run's is {member.Config.NumHeads}; only the resolution may differ.");
            var state = MemberState(source, member.Config, path);
            var target = StateDict.FromParameters(member);
            CheckSameNetwork(Describe(state, path), Describe(target, "the run's network"), path);
            var resized = ResolutionResize.Interpolate(state, member.Config);
            StateDict.LoadInto(member, resized, strict: true, path);
        }
        int sourceGrid = GridOf(source);
        messages?.Report(sourceGrid == network.Members[0].Config.GridSize
            ? $"initialised the network from {path}"
            : $"initialised the network from {path}, resized from a {sourceGrid}x{sourceGrid} to a {network.Members[0].Config.GridSize}x{network.Members[0].Config.GridSize} token grid");
    }

    /// <summary>
    /// The state dict a file holds, with official names (a shared ladder's biases under m{n}), and the model
    /// config when the file carries one.
    /// </summary>
    public static (Dictionary<string, StoredTensor> State, ModelConfig? Config) Read(string path)
    {
        if (!File.Exists(path)) throw new MediatorDiTException($"init_from file '{path}' does not exist.");
        if (!ModelFiles.LooksLikeSafeTensors(path)) return (StateDict.Load(path), null);
        var file = SafeTensors.Read(path);
        if (file.Metadata.TryGetValue("format", out var format) && format == TrainingCheckpoint.Format)
        {
            TrainingCheckpoint.VerifyData(file);
            var ema = file.Tensors.Where(kv => kv.Key.StartsWith("ema.", StringComparison.Ordinal))
                .ToDictionary(kv => kv.Key["ema.".Length..], kv => kv.Value, StringComparer.Ordinal);
            var run = file.Metadata.TryGetValue("config", out var json) ? TrainConfig.FromJson(json, path) : null;
            return (ema, run?.ModelConfig);
        }
        var config = file.Metadata.TryGetValue(ModelFiles.ConfigMetadataKey, out var c) ? ModelConfig.FromJson(c, $"{path} (__metadata__ config)") : null;
        return (new Dictionary<string, StoredTensor>(file.Tensors, StringComparer.Ordinal), config);
    }

    private static bool HasCombinedBiases(IReadOnlyDictionary<string, StoredTensor> state) =>
        state.Keys.Any(k => CombinedBiasPattern().IsMatch(k));

    /// <summary>One member's official state dict: shared tensors plus its own count's biases.</summary>
    private static Dictionary<string, StoredTensor> MemberState(IReadOnlyDictionary<string, StoredTensor> source, ModelConfig member, string path)
    {
        if (!HasCombinedBiases(source)) return new Dictionary<string, StoredTensor>(source, StringComparer.Ordinal);
        var counts = source.Keys.Select(k => CombinedBiasPattern().Match(k)).Where(m => m.Success)
            .Select(m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).Distinct().Order().ToArray();
        if (!counts.Contains(member.MediatorNum))
            throw new MediatorDiTException(
                $"{path}: holds a shared ladder with mediator counts {string.Join(",", counts)} but the run needs mediator_num {member.MediatorNum}; use the same mediators.");
        var state = new Dictionary<string, StoredTensor>(StringComparer.Ordinal);
        string own = $".m{member.MediatorNum}.";
        foreach (var (key, value) in source)
        {
            if (!CombinedBiasPattern().IsMatch(key)) state[key] = value;
            else if (key.Contains(own, StringComparison.Ordinal)) state[key.Replace(own, ".", StringComparison.Ordinal)] = value;
        }
        return state;
    }

    /// <summary>
    /// The network's sizes as its tensors show them, resolution left out: what must agree between the file
    /// and the run, named as in the model config. The attention is the kind whose marker key block 0 has
    /// ("none" when no kind's is there), with the heads and mediators its weights show
    /// (<see cref="AttentionSpec.ReadShapes"/>); errors name <paramref name="source"/>.
    /// </summary>
    public static IReadOnlyList<(string Field, string Value)> Describe(IReadOnlyDictionary<string, StoredTensor> state, string source = "the state dict")
    {
        string Dim(string key, int axis) => state.TryGetValue(key, out var t) && t.Shape.Length > axis ? t.Shape[axis].ToString() : "none";
        var blocks = state.Keys.Select(k => BlockPattern().Match(k)).Where(m => m.Success).Select(m => int.Parse(m.Groups[1].Value)).ToArray();
        var attention = AttentionKinds.Recognise(state);
        var shown = attention?.ReadShapes(state, source) ?? AttentionShapes.None;
        int outWidth = state.TryGetValue("final_layer.linear.weight", out var fin) ? fin.Shape[0] : 0;
        int patch = state.TryGetValue("x_embedder.proj.weight", out var pe) && pe.Shape.Length == 4 ? pe.Shape[2] : 0;
        int inChannels = pe?.Shape.Length == 4 ? pe.Shape[1] : 0;
        string learnSigma = patch > 0 && inChannels > 0 ? (outWidth == 2 * patch * patch * inChannels).ToString().ToLowerInvariant() : "unknown";
        return
        [
            ("hidden_size", Dim("x_embedder.proj.weight", 0)),
            ("in_channels", Dim("x_embedder.proj.weight", 1)),
            ("patch_size", Dim("x_embedder.proj.weight", 2)),
            ("depth", (blocks.Length == 0 ? 0 : blocks.Max() + 1).ToString()),
            ("num_classes (label table rows)", Dim("y_embedder.embedding_table.weight", 0)),
            ("mlp_ratio (fc1 rows)", Dim("blocks.0.mlp.fc1.weight", 0)),
            ("learn_sigma", learnSigma),
            ("attention", attention?.Name ?? "none"),
            ("mediator_num", shown.MediatorNum?.ToString() ?? "none"),
            ($"num_heads (of {shown.HeadsShownBy ?? "the attention weights"})", shown.NumHeads?.ToString() ?? "none"),
        ];
    }

    private static void CheckSameNetwork(IReadOnlyList<(string Field, string Value)> file, IReadOnlyList<(string Field, string Value)> run, string path)
    {
        for (int i = 0; i < run.Count; i++)
            if (file[i].Value != run[i].Value)
                throw new MediatorDiTException(
                    $"{path}: cannot initialise the run from it: its {file[i].Field} is {file[i].Value} but the run's is {run[i].Value}; only the resolution may differ.");
    }

    private static int GridOf(IReadOnlyDictionary<string, StoredTensor> state) =>
        state.TryGetValue("pos_embed", out var pos) && pos.Shape.Length == 3 ? (int)Math.Round(Math.Sqrt(pos.Shape[1])) : 0;
}
