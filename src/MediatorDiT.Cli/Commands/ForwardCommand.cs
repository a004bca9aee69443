using System.CommandLine;
using MediatorDiT.Cuda.Sampling;
using MediatorDiT.IO;
using MediatorDiT.Models;
using MediatorDiT.Tensors;

namespace MediatorDiT.Cli.Commands;

/// <summary>
/// `mdit forward`: runs the network on x, t, y stored in a safetensors file and writes `out`
/// (and the guided `cfg.out` for `cfg.x`, `cfg.t`, `cfg.y` with --cfg-scale), for parity checks
/// against any other implementation.
/// </summary>
public static class ForwardCommand
{
    public static Command Create()
    {
        var weights = new Option<string>("--weights") { Description = "model weights (.safetensors or PyTorch .pt)", Required = true };
        var inputs = new Option<string>("--inputs") { Description = "safetensors with x (B,C,H,W), t (B), y (B)", Required = true };
        var output = new Option<string>("--out") { Description = "safetensors file to write", Required = true };
        var cfgScale = new Option<float?>("--cfg-scale") { Description = "also run forward_with_cfg on cfg.x/cfg.t/cfg.y with this guidance scale" }.GuidanceScale();
        var cfgAll = new Option<bool>("--cfg-all-channels") { Description = "guide all channels instead of the official first 3" };
        var config = new Option<string?>("--config") { Description = "model config JSON when the weights carry none" };
        var key = new Option<string?>("--key") { Description = "for training checkpoints: 'model' or 'ema' (default ema)" };
        var device = new DeviceOptions("the forward pass");
        var command = new Command("forward", "Run the network on tensors stored in a file and write its output.")
        {
            weights, inputs, output, cfgScale, cfgAll, config, key,
        };
        device.AddTo(command);
        command.SetAction((parse, token) => CliApp.Guard(() =>
        {
            using var deviceModels = device.OpenModels(parse);
            string outPath = CliApp.OutputFile(parse.GetValue(output)!);
            var model = ModelFiles.Load(parse.GetValue(weights)!, parse.GetValue(config), parse.GetValue(key));
            var network = deviceModels?.Network(model);
            string inputPath = parse.GetValue(inputs)!;
            var io = SafeTensors.Read(inputPath);
            var results = new Dictionary<string, StoredTensor>
            {
                ["out"] = StoredTensor.FromFloat(Run(model, network, io, "", null, false)),
            };
            if (parse.GetValue(cfgScale) is float scale)
            {
                results["cfg.out"] = StoredTensor.FromFloat(Run(model, network, io, "cfg.", scale, parse.GetValue(cfgAll)));
            }
            SafeTensors.Write(outPath, results);
            Console.WriteLine($"wrote {string.Join(", ", results.Keys)} to {outPath}");
            return 0;
        }, token));
        return command;
    }

    /// <summary>The forward (or forward_with_cfg) of the stored inputs, on the device's network when there is one.</summary>
    private static Tensor Run(SiTModel model, DeviceModelFunction? network, SafeTensorsFile io, string prefix, float? cfgScale, bool allChannels)
    {
        var x = io.GetFloat(prefix + "x");
        var tStored = io.Tensors.TryGetValue(prefix + "t", out var ts) ? ts
            : throw new MediatorDiTException($"{io.Path}: missing tensor '{prefix}t'.");
        float[] t = tStored.DType == DType.F32 ? tStored.ToFloat().Span.ToArray() : tStored.ToInt64().Select(v => (float)v).ToArray();
        int[] y = io.GetInt64(prefix + "y").Select(v => checked((int)v)).ToArray();
        int? guided = allChannels ? null : 3;
        return (cfgScale, network) switch
        {
            (float s, null) => model.ForwardWithCfg(x, t, y, s, guided),
            (float s, { } device) => device.ForwardWithCfg(x, t, y, s, guided),
            (null, null) => model.Forward(x, t, y),
            (null, { } device) => device.Forward(x, t, y),
        };
    }
}
