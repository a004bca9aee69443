using System.CommandLine;
using MediatorDiT.Data;
using MediatorDiT.Models;
using MediatorDiT.Pipelines;
using MediatorDiT.Tensors;
using MediatorDiT.Web;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace MediatorDiT.Cli.Commands;

/// <summary>
/// `mdit serve`: a local web page and JSON API to generate images with a model or a ladder and watch the mediator
/// schedule at work (docs/SERVE.md). With no arguments it serves the shipped Fashion-MNIST ladder on
/// http://127.0.0.1:8080, reachable from this machine only.
/// </summary>
public static class ServeCommand
{
    public static Command Create()
    {
        var ladder = new Option<string?>("--ladder") { Description = "comma-separated weights with increasing mediator counts (default: the shipped models/fashion-mnist-ladder)" };
        var checkpoint = new Option<string?>("--checkpoint") { Description = "one model's weights (.safetensors or .pt) instead of a ladder" };
        var config = new Option<string?>("--config") { Description = "model config JSON for weights that carry none" };
        var vae = new Option<string?>("--vae") { Description = "VAE weights that decode a latent model's samples (required for latent models)" };
        var classNames = new Option<string?>("--class-names") { Description = "class names: fashion-mnist, mnist, or a text file with one name per line (default: fashion-mnist for the shipped ladder, else 'class c')" };
        var host = new Option<string>("--host") { Description = "address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 serves others)", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { DefaultValueFactory = _ => 8080 }.InRange(0, 65535);
        var device = new DeviceOptions("sampling");
        var threads = new Option<int?>("--threads").Threads();
        var maxImages = new Option<int>("--max-images") { Description = "images one job may ask for", DefaultValueFactory = _ => 64 }.AtLeast(1);
        var maxSteps = new Option<int>("--max-steps") { Description = "sampler steps one job may ask for", DefaultValueFactory = _ => 250 }.AtLeast(2);
        var maxQueue = new Option<int>("--max-queue") { Description = "jobs that may wait behind the running one", DefaultValueFactory = _ => 8 }.AtLeast(0);
        var previewEvery = new Option<int?>("--preview-every") { Description = "send the current images every this many steps (default 1; 10 for latent models, each preview being a VAE decode)" }.AtLeast(1);
        var command = new Command("serve", "Serve a web page and JSON API to generate images and watch the mediator schedule (docs/SERVE.md).")
        {
            ladder, checkpoint, config, vae, classNames, host, port, threads, maxImages, maxSteps, maxQueue, previewEvery,
        };
        device.AddTo(command);
        command.SetAction((p, token) => CliApp.Guard(async stop =>
        {
            // The jobs' network calls run on the device given (from the server's one worker thread); the VAE and PNGs stay on the host.
            var (compute, deviceModels) = device.ApplyForSampling(ComputeContext.WithThreads(p.GetValue(threads)), p);
            using var deviceScope = deviceModels;
            bool shipped = p.GetValue(ladder) is null && p.GetValue(checkpoint) is null;
            string[] paths = OptionValues.ModelPaths(p.GetValue(checkpoint), p.GetValue(ladder), () => [.. DiffusionPipeline.ShippedLadderPaths()]);
            var pipeline = DiffusionPipeline.LoadLadder(paths, new PipelineLoadOptions
            {
                ConfigPath = p.GetValue(config),
                VaePath = p.GetValue(vae),
                Compute = compute,
                DeviceModels = deviceModels,
            });
            if (!pipeline.IsPixelSpace && pipeline.Vae is null)
                throw new MediatorDiTException($"{paths[0]} makes {pipeline.Config.InChannels}-channel latents; give --vae W to decode them into images.");
            var options = new ServerOptions
            {
                Host = p.GetValue(host)!,
                Port = p.GetValue(port),
                MaxImages = p.GetValue(maxImages),
                MaxSteps = p.GetValue(maxSteps),
                MaxQueue = p.GetValue(maxQueue),
                PreviewEvery = p.GetValue(previewEvery) ?? (pipeline.IsPixelSpace ? 1 : 10),
                ClassNames = ClassNames(p.GetValue(classNames) ?? (shipped ? "fashion-mnist" : null), pipeline.NumClasses),
            }.Validate();
            foreach (var (path, model) in paths.Zip(pipeline.Models))
                Console.Error.WriteLine($"{path}: {AttentionKinds.Describe(model.Config)}");
            if (deviceModels is not null) Console.Error.WriteLine($"device: {deviceModels.DeviceName}");
            pipeline.WarmUp();
            await using var app = ServeApp.Build(pipeline, options);
            try
            {
                await app.StartAsync(stop);
            }
            catch (IOException e)
            {
                throw new MediatorDiTException($"cannot listen on {options.Host}:{options.Port} ({e.Message.TrimEnd('.')}); choose another --port or --host.", e);
            }
            string url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault() ?? $"http://{options.Host}:{options.Port}";
            Console.WriteLine($"mdit serve: {ServeApp.Describe(options, url)}; Ctrl+C stops it.");
            try
            {
                await Task.Delay(Timeout.Infinite, stop);
            }
            catch (OperationCanceledException)
            {
            }
            await app.StopAsync(CancellationToken.None);
            return 0;
        }, token));
        return command;
    }

    /// <summary>Class names from a built-in dataset's name or a text file (one per line), checked against the model.</summary>
    private static IReadOnlyList<string>? ClassNames(string? source, int classes)
    {
        if (source is null) return null;
        if (source is "fashion-mnist" or "mnist")
        {
            var names = DatasetClassNames.For(source, classes);
            if (names[0] == "class 0")
                throw new MediatorDiTException($"--class-names {source}: that dataset has 10 classes, but the model has {classes}.");
            return names;
        }
        if (!File.Exists(source))
            throw new MediatorDiTException($"--class-names {source}: no such file (give fashion-mnist, mnist or a text file with one name per line).");
        var lines = File.ReadLines(source).Select(s => s.Trim()).Where(s => s.Length > 0).ToArray();
        if (lines.Length != classes)
            throw new MediatorDiTException($"--class-names {source}: the file names {lines.Length} classes, but the model has {classes}.");
        return lines;
    }
}
