// Loads the largest model of the shipped Fashion-MNIST mediator ladder and prints its FLOPs per image.
//   dotnet run -c Release --project examples/SampleLadder [-- WEIGHTS.safetensors]
// Without an argument the weights are found as `mdit demo` finds them: under $MDIT_MODELS_DIR, else in a
// models/ folder above the executable or the working directory (in the repository, its models/ folder).
using MediatorDiT.Evaluation;
using MediatorDiT.IO;
using MediatorDiT.Models;

const string ShippedWeights = "fashion-mnist-ladder/m64.safetensors";

IReadOnlyList<string> looked = [];
string? weights = args.Length > 0 ? args[0] : ShippedModels.TryFind(ShippedWeights, out looked);
if (weights is null)
{
    Console.Error.WriteLine($"error: models/{ShippedWeights} was not found (looked for {string.Join(", ", looked)}); " +
        $"pass a weights file or set {ShippedModels.ModelsDirVariable}.");
    return 1;
}

SiTModel model = ModelFiles.Load(weights);
ModelConfig config = model.Config;
FlopReport flops = FlopCounter.Count(config);

string attention = config.Attention == AttentionKind.Full ? "full attention" : $"{config.MediatorNum} mediators";
Console.WriteLine($"{weights}: {attention}, hidden {config.HiddenSize}, depth {config.Depth}, {config.NumTokens} tokens");
Console.WriteLine($"{flops.PerImage / 1e6:F1} MFLOPs per image (one multiply-accumulate = one FLOP)");
Console.WriteLine(flops.ToTable());
return 0;
