using System.CommandLine;
using MediatorDiT.Training;

namespace MediatorDiT.Cli.Commands;

/// <summary>
/// `mdit export RUN_OR_CHECKPOINT [--weights ema|model] [--out DIR]`: the weights of a training checkpoint
/// (the latest of a run folder, or a given one) as plain safetensors state dicts that `mdit sample` loads.
/// </summary>
public static class ExportCommand
{
    public static Command Create()
    {
        var input = new Argument<string>("checkpoint") { Description = "a run folder (its latest checkpoint) or a checkpoint file" };
        var weights = new Option<string>("--weights") { Description = "ema (the EMA weights) or model (the raw network weights)", DefaultValueFactory = _ => "ema" };
        var output = new Option<string?>("--out") { Description = "output folder (default: the run folder)" };
        var command = new Command("export", "Write the EMA or raw weights of a training checkpoint as safetensors state dicts.") { input, weights, output };
        command.SetAction((parse, token) => CliApp.Guard(() =>
        {
            string source = parse.GetValue(input)!;
            string which = parse.GetValue(weights)!;
            if (which is not ("ema" or "model"))
                throw new MediatorDiTException($"--weights must be ema or model, got '{which}'.");
            string outDir = parse.GetValue(output) ?? (Directory.Exists(source) ? source : Path.GetDirectoryName(Path.GetDirectoryName(Path.GetFullPath(source)))!);
            Directory.CreateDirectory(outDir);
            foreach (var f in CheckpointExport.Export(source, which == "ema", outDir)) Console.WriteLine($"wrote {f}");
            return 0;
        }, token));
        return command;
    }
}
