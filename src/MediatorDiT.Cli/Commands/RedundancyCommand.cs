using System.CommandLine;
using System.Globalization;
using MediatorDiT.Cli.Rendering;
using MediatorDiT.Diffusion;
using MediatorDiT.Evaluation;
using MediatorDiT.IO;
using MediatorDiT.Models;
using MediatorDiT.Pipelines;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;

namespace MediatorDiT.Cli.Commands;

/// <summary>
/// `mdit redundancy`: samples with a model (or a mediator ladder) and measures the attention redundancy S
/// of every layer at every sampling step, the mean pairwise Jensen-Shannon divergence between query rows
/// (the paper's Sec. 3.2, Fig. 1). Writes redundancy.csv, redundancy-layers.svg and redundancy-heatmap.svg.
/// </summary>
public static class RedundancyCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string?>("--checkpoint") { Description = "one model's weights (.safetensors or .pt)" };
        var ladder = new Option<string?>("--ladder") { Description = "comma-separated weights with increasing mediator counts (step-wise dynamic schedule)" };
        var config = new Option<string?>("--config") { Description = "model config JSON for weights that carry none" };
        var ratios = new Option<string?>("--ratios") { Description = "ladder: switch ratios, decreasing in (0, 1] (default 0.9,0.6 for three models)" };
        var first = new Option<int>("--first") { Description = "ladder: steps whose mean state change is the reference", DefaultValueFactory = _ => 3 }.AtLeast(1);
        var switchAt = new Option<string?>("--switch-at") { Description = "ladder: fixed schedule, fractions of the steps at which to move up" };
        var samples = new Option<int>("--samples") { Description = "samples the values are averaged over", DefaultValueFactory = _ => 32 }.AtLeast(1);
        var steps = new Option<int>("--steps") { Description = "sampler time points", DefaultValueFactory = _ => 50 }.TimePoints();
        var mode = new Option<string>("--mode") { Description = "sde or ode", DefaultValueFactory = _ => "sde" };
        var method = new Option<string?>("--method") { Description = "sde: euler|heun; ode: euler|heun|dopri5 (default euler: one evaluation per step)" };
        var cfgScale = new Option<float>("--cfg-scale") { Description = "classifier-free guidance scale (1 = none); the conditional half is measured", DefaultValueFactory = _ => 1f }.GuidanceScale();
        var labels = new Option<string?>("--labels") { Description = "class labels cycled over the samples (default 0, 1, 2, ...)" };
        var batch = new Option<int>("--batch-size") { DefaultValueFactory = _ => 16 }.BatchSize();
        var seed = new Option<ulong>("--seed") { DefaultValueFactory = _ => 0 };
        var output = new Option<string>("--out") { Description = "output folder", DefaultValueFactory = _ => "redundancy" };
        var threads = new Option<int?>("--threads").Threads();
        var device = new DeviceOptions("sampling");
        var noProgress = new Option<bool>("--no-progress");
        var command = new Command("redundancy", "Measure the attention redundancy (mean pairwise JS divergence of query rows) per layer and sampling step.")
        {
            checkpoint, ladder, config, ratios, first, switchAt, samples, steps, mode, method, cfgScale, labels, batch, seed, output, threads,
            noProgress,
        };
        device.AddTo(command);
        command.SetAction((p, token) => CliApp.Guard(() =>
        {
            // The network calls run on the device given, which hands each block's attention input back; the maps and
            // the JS divergences are computed on the host.
            var (compute, deviceModels) = device.ApplyForSampling(ComputeContext.WithThreads(p.GetValue(threads)), p);
            using var deviceScope = deviceModels;
            using var computeScope = compute.Use();
            float scale = p.GetValue(cfgScale);
            var options = new RedundancyOptions
            {
                Samples = p.GetValue(samples),
                BatchSize = p.GetValue(batch),
                Labels = p.GetValue(labels) is string ls ? OptionValues.Integers(ls, "--labels", "comma-separated class numbers such as 0,3,7") : [],
            }.Validate();
            string outDir = p.GetValue(output)!;
            using var outFolder = FreshFolder.Create(outDir, "output folder"); // removed again if the run fails before writing to it

            string[] paths = OptionValues.ModelPaths(p.GetValue(checkpoint), p.GetValue(ladder));
            var pipeline = DiffusionPipeline.LoadLadder(paths, new PipelineLoadOptions { ConfigPath = p.GetValue(config), Compute = compute, DeviceModels = deviceModels });
            var models = pipeline.Models;
            if (deviceModels is not null) Console.Error.WriteLine($"device: {deviceModels.DeviceName}");
            string modeName = p.GetValue(mode)!.ToLowerInvariant();
            if (modeName is not ("sde" or "ode")) throw new MediatorDiTException($"--mode must be sde or ode, got '{p.GetValue(mode)}'.");
            string methodName = p.GetValue(method) ?? "euler"; // one evaluation per step for both modes
            var generation = new GenerationOptions
            {
                Sampler = modeName == "sde" ? SamplerKind.Sde : SamplerKind.Ode,
                Steps = p.GetValue(steps),
                SdeMethod = modeName == "sde" ? OptionValues.Enum<SdeMethod>(methodName, "--method") : SdeMethod.Euler,
                OdeMethod = modeName == "ode" ? OptionValues.Enum<OdeMethod>(methodName, "--method") : OdeMethod.Euler,
                GuidanceScale = scale,
                Schedule = p.GetValue(switchAt) is string fractions
                    ? new ScheduleChoice.Fixed(OptionValues.Split(fractions).Select(v => OptionValues.Number(v, "--switch-at")).ToArray())
                    : new ScheduleChoice.Dynamic(p.GetValue(ratios) is string rs ? OptionValues.Split(rs).Select(v => OptionValues.Number(v, "--ratios")).ToArray() : null,
                        p.GetResult(first) is { Implicit: false } ? p.GetValue(first) : null),
            }.Validate();
            var (schedule, _) = pipeline.CreateSchedule(generation);
            var sample = pipeline.CreateSampler(generation);
            var guidance = pipeline.GuidanceFor(generation);
            var rng = new RandomSource(p.GetValue(seed));

            using var renderer = ProgressRenderer.Create(p.GetValue(noProgress));
            var progress = new ImmediateProgress<RedundancyProgress>(r =>
                renderer.Report(r.Step, r.StepCount, $"samples {r.SamplesDone}/{r.Samples}"));
            var points = RedundancyAnalysis.Measure(models, guidance, schedule, sample, rng, options, progress, token, deviceModels: pipeline.DeviceModels);
            renderer.Done();

            string csv = Path.Combine(outDir, "redundancy.csv");
            RedundancyAnalysis.WriteCsv(csv, points);
            var cfg = models[0].Config;
            string name = models.Count > 1 ? $"ladder of {models.Count} models"
                : AttentionKinds.Describe(cfg);
            var (curves, heat) = RedundancyAnalysis.Plots(points, name);
            SvgPlot.Write(Path.Combine(outDir, "redundancy-layers.svg"), curves);
            SvgPlot.Write(Path.Combine(outDir, "redundancy-heatmap.svg"), heat);
            foreach (var layer in points.GroupBy(q => q.Layer))
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"layer {layer.Key}: S first {layer.First().S:F4}, last {layer.Last().S:F4}, mean {layer.Average(q => q.S):F4}"));
            Console.WriteLine($"{points.Count} values ({cfg.Depth} layers, {options.Samples} samples) -> {csv}");
            return 0;
        }, token));
        return command;
    }
}
