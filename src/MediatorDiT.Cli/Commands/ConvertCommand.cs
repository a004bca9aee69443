using System.CommandLine;
using MediatorDiT.IO;
using MediatorDiT.Models;

namespace MediatorDiT.Cli.Commands;

/// <summary>`mdit convert IN.pt OUT.safetensors [--key ema]`: a PyTorch state dict written as safetensors.</summary>
public static class ConvertCommand
{
    public static Command Create()
    {
        var input = new Argument<string>("input") { Description = "PyTorch .pt/.pth file (bare state dict or training checkpoint)" };
        var output = new Argument<string>("output") { Description = "safetensors file to write" };
        var key = new Option<string?>("--key") { Description = "which state dict of a training checkpoint: 'model' or 'ema' (default ema)" };
        var config = new Option<string?>("--config") { Description = "model config JSON to store in the header's __metadata__" };
        var command = new Command("convert", "Write the state dict of a PyTorch checkpoint as safetensors.") { input, output, key, config };
        command.SetAction((parse, token) => CliApp.Guard(() =>
        {
            string inPath = parse.GetValue(input)!, outPath = CliApp.OutputFile(parse.GetValue(output)!);
            if (!File.Exists(inPath)) throw new MediatorDiTException($"input file '{inPath}' does not exist.");
            var state = TorchFile.LoadStateDict(inPath, parse.GetValue(key));
            Dictionary<string, string>? metadata = null;
            if (parse.GetValue(config) is string configPath)
            {
                if (!File.Exists(configPath)) throw new MediatorDiTException($"config file '{configPath}' does not exist.");
                var cfg = ModelConfig.FromJson(File.ReadAllText(configPath), configPath).Validate();
                metadata = new Dictionary<string, string> { [ModelFiles.ConfigMetadataKey] = cfg.ToJson() };
            }
            SafeTensors.Write(outPath, state, metadata);
            Console.WriteLine($"wrote {state.Count} tensors to {outPath}");
            return 0;
        }, token));
        return command;
    }
}
