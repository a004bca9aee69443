using System.CommandLine;
using System.Globalization;
using MediatorDiT.Cli.Rendering;
using MediatorDiT.Data;
using MediatorDiT.Evaluation;
using MediatorDiT.IO;
using MediatorDiT.Models;
using MediatorDiT.Pipelines;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;

namespace MediatorDiT.Cli.Commands;

/// <summary>
/// `mdit demo`: with no arguments, samples a labelled grid of every Fashion-MNIST class with the shipped
/// mediator ladder (models/fashion-mnist-ladder) under the step-wise dynamic schedule and, on the same
/// noise and labels, with its largest model alone; writes demo.png and demo.json and prints the FLOPs
/// and wall-time savings, the switch steps and both runs' class agreement under the shipped classifier.
/// </summary>
public static class DemoCommand
{
    private const int Scale = 3;

    public static Command Create()
    {
        var output = new Option<string>("--out") { Description = "output folder", DefaultValueFactory = _ => "demo" };
        var seed = new Option<ulong>("--seed") { DefaultValueFactory = _ => 0 };
        var perClass = new Option<int>("--per-class") { Description = "images per class (one row per class)", DefaultValueFactory = _ => 8 }.AtLeast(1);
        var steps = new Option<int>("--steps") { Description = "time points of the SDE", DefaultValueFactory = _ => GenerationOptions.DefaultTransportSteps }.TimePoints();
        var ratios = new Option<string?>("--ratios") { Description = "switch ratios (default: schedule.json beside the ladder, else 0.9,0.6)" };
        var first = new Option<int?>("--first") { Description = "reference steps of the schedule (default: schedule.json beside the ladder, else 3)" };
        var threads = new Option<int?>("--threads").Threads();
        var device = new DeviceOptions("sampling");
        var ladder = new Option<string?>("--ladder") { Description = "comma-separated weights with increasing mediator counts (default: the shipped models/fashion-mnist-ladder)" };
        var classifier = new Option<string?>("--classifier") { Description = "classifier weights (default models/classifier-fashion-mnist.safetensors)" };
        var noProgress = new Option<bool>("--no-progress");
        var command = new Command("demo", "Sample every class with the shipped mediator ladder and compare the dynamic schedule with its largest model alone.")
        {
            output, seed, perClass, steps, ratios, first, threads, ladder, classifier, noProgress,
        };
        device.AddTo(command);
        command.SetAction((p, token) => CliApp.Guard(() =>
        {
            var (compute, deviceModels) = device.ApplyForSampling(ComputeContext.WithThreads(p.GetValue(threads)), p);
            using var deviceScope = deviceModels;
            using var computeScope = compute.Use();
            string outDir = p.GetValue(output)!;
            using var outFolder = FreshFolder.Create(outDir, "output folder"); // removed again if the run fails before writing to it
            string[] paths = p.GetValue(ladder) is string list ? OptionValues.Split(list) : [.. DiffusionPipeline.ShippedLadderPaths()];
            if (paths.Length < 2)
                throw new MediatorDiTException($"--ladder names {paths.Length} weight file; the demo compares a ladder of 2 or more models with its largest one.");

            string? classifierPath = p.GetValue(classifier);
            string dataset = "fashion-mnist";
            ImageClassifier model;
            if (classifierPath is not null)
            {
                model = ImageClassifier.Load(classifierPath, out var metadata);
                if (metadata.TryGetValue("dataset", out var trained)) dataset = trained;
            }
            else
            {
                classifierPath = ClassifierFiles.DefaultPath(dataset);
                model = ImageClassifier.Load(classifierPath);
            }

            var pipeline = DiffusionPipeline.LoadLadder(paths, new PipelineLoadOptions { Compute = compute, DeviceModels = deviceModels });
            var cfg = pipeline.Config;
            if (cfg.InChannels is not (1 or 3) || cfg.InputSize != model.Config.ImageSize)
                throw new MediatorDiTException($"{paths[0]} makes {cfg.InChannels}-channel {cfg.InputSize}x{cfg.InputSize} samples, but the classifier {classifierPath} takes {model.Config.ImageSize}x{model.Config.ImageSize} images; the demo needs a pixel-space ladder of the classifier's dataset.");

            // Schedule: options, else schedule.json beside the ladder (written from a threshold search), else the defaults.
            var options = new LadderDemoOptions
            {
                PerClass = p.GetValue(perClass), Steps = p.GetValue(steps), Seed = p.GetValue(seed), First = p.GetValue(first),
                Ratios = p.GetValue(ratios) is string rs ? OptionValues.Split(rs).Select(v => OptionValues.Number(v, "--ratios")).ToArray() : null,
            }.Validate();

            var names = pipeline.ModelNames.ToArray();
            var classNames = DatasetClassNames.For(dataset, pipeline.NumClasses);
            var inv = CultureInfo.InvariantCulture;
            Console.Error.WriteLine($"ladder {string.Join(", ", paths)}");
            Console.Error.WriteLine($"classifier {classifierPath}");
            if (deviceModels is not null) Console.Error.WriteLine($"device {deviceModels.DeviceName}");
            using var renderer = ProgressRenderer.Create(p.GetValue(noProgress));
            var progress = new ImmediateProgress<LadderDemoProgress>(s => renderer.Report(s.StepsDone, s.StepCount, s.Run == "dynamic" ? "dynamic schedule" : $"{names[^1]} alone"));
            var result = LadderDemo.Run(pipeline, model, options, progress, token);
            renderer.Done();
            var (picture, record) = LadderDemoReport.Write(outDir, result, paths, names, classNames, Scale);

            string dynName = $"dynamic {string.Join("-", names)}", aloneName = $"{names[^1]} alone";
            Console.WriteLine(string.Create(inv, $"{result.Labels.Length} images ({options.PerClass} per class), SDE Euler, {options.Steps} time points, seed {options.Seed}"));
            Console.WriteLine(string.Create(inv, $"schedule: ratios {string.Join(",", result.SwitchRatios.Select(r => r.ToString("R", inv)))}, first {result.First} ({result.ScheduleSource})"));
            Console.WriteLine($"{"",-24} {"GFLOPs/image",13} {"wall s",8} {"class agreement",16}");
            Console.WriteLine(string.Create(inv, $"{dynName,-24} {result.Dynamic.FlopsPerImage / 1e9,13:F3} {result.Dynamic.WallSeconds,8:F2} {result.Dynamic.ClassAgreement,16:F4}"));
            Console.WriteLine(string.Create(inv, $"{aloneName,-24} {result.Largest.FlopsPerImage / 1e9,13:F3} {result.Largest.WallSeconds,8:F2} {result.Largest.ClassAgreement,16:F4}"));
            Console.WriteLine(string.Create(inv, $"{"saving",-24} {100 * result.FlopsSaving,12:F1}% {100 * result.TimeSaving,7:F1}%"));
            var switches = result.SwitchSteps;
            var moves = Enumerable.Range(1, names.Length - 1).Select(m => switches[m] < 0 ? $"{names[m]} never" : $"{names[m]} from step {switches[m]}");
            Console.WriteLine($"switch steps: {string.Join(", ", moves)} (of {result.Dynamic.Usage.StepCount} steps, counted from 0)");
            Console.WriteLine($"-> {picture}, {record}");
            return 0;
        }, token));
        return command;
    }
}
