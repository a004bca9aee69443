using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using MediatorDiT.Cli.Rendering;
using MediatorDiT.Diffusion;
using MediatorDiT.Evaluation;
using MediatorDiT.IO;
using MediatorDiT.Pipelines;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;

namespace MediatorDiT.Cli.Commands;

/// <summary>
/// `mdit search-thresholds`: sweeps the authors' switch-ratio grid for a ladder on a fixed seed set
/// (shared trajectory prefixes evaluated once), scores each pair with a cheap proxy, optionally re-scores
/// frontier candidates on more seeds, and picks the best schedule within a GFLOPs budget. Writes
/// pairs.csv, pareto.svg and best.json (with the `mdit sample` arguments that reproduce the choice).
/// </summary>
public static class SearchThresholdsCommand
{
    public static Command Create()
    {
        var ladder = new Option<string>("--ladder") { Description = "comma-separated weights with increasing mediator counts (2 or 3 models)", Required = true };
        var config = new Option<string?>("--config") { Description = "model config JSON for weights that carry none" };
        var samples = new Option<int>("--samples") { Description = "samples in the fixed seed set", DefaultValueFactory = _ => 64 }.AtLeast(1);
        var seed = new Option<ulong>("--seed") { DefaultValueFactory = _ => 0 };
        var batch = new Option<int>("--batch-size") { Description = "samples per batch = decision unit (1: the official per-image rule)", DefaultValueFactory = _ => 1 }.BatchSize();
        var labels = new Option<string?>("--labels") { Description = "class labels, comma-separated, cycled (default: cycle through the classes)" };
        var sampler = new SamplerOptions();
        var first = sampler.First;
        var distance = sampler.Distance;
        var mode = sampler.Mode;
        var method = sampler.Method;
        var steps = sampler.Steps;
        var lastStep = sampler.LastStep;
        var lastStepSize = sampler.LastStepSize;
        var diffusionForm = sampler.DiffusionForm;
        var cfgScale = sampler.CfgScale;
        var cfgAll = sampler.CfgAll;
        var refine = new Option<int>("--refine") { Description = "re-score up to K proxy-frontier candidates with the expensive scorer (0 = no refine step)", DefaultValueFactory = _ => 0 }.AtLeast(0);
        var refineSamples = new Option<int?>("--refine-samples") { Description = "samples for the refine step (default 4 x --samples)" };
        var refineScorer = new Option<string>("--refine-scorer") { Description = "expensive scorer: frechet (pooled-pixel Frechet distance to the largest model's samples) or fid (FID against the dataset's test split with the classifier)", DefaultValueFactory = _ => "frechet" };
        var proxyScorer = new Option<string>("--proxy") { Description = "cheap scorer of every pair: reference-rms (distance to the largest model's sample from the same noise), frechet or fid", DefaultValueFactory = _ => "reference-rms" };
        var classifier = new Option<string?>("--classifier") { Description = "fid: classifier weights (default models/classifier-<dataset>.safetensors)" };
        var dataset = new Option<string?>("--dataset") { Description = "fid: fashion-mnist or mnist, whose test split is the reference (default: the classifier's dataset, else fashion-mnist)" };
        var dataDir = new Option<string?>("--data-dir") { Description = "fid: where built-in datasets (and cached reference statistics) live" };
        var budget = new Option<double?>("--budget-gflops") { Description = "choose the best schedule whose mean GFLOPs per image is at most this" };
        var output = new Option<string>("--out") { Description = "output folder", DefaultValueFactory = _ => "thresholds" };
        var independent = new Option<bool>("--independent") { Description = "run every schedule separately instead of sharing trajectory prefixes (same results, slower)" };
        var threads = new Option<int?>("--threads").Threads();
        var device = new DeviceOptions("sampling");
        var noProgress = new Option<bool>("--no-progress");
        var command = new Command("search-thresholds", "Sweep the switch-ratio grid of a mediator ladder and pick the best schedule within a GFLOPs budget.")
        {
            ladder, config, samples, seed, batch, labels, first, distance, mode, method, steps, lastStep, lastStepSize, diffusionForm,
            cfgScale, cfgAll, refine, refineSamples, refineScorer, proxyScorer, classifier, dataset, dataDir, budget, output, independent, threads,
            noProgress,
        };
        device.AddTo(command);
        command.SetAction((p, token) => CliApp.Guard(() =>
        {
            // Every network call of the sweep and the refine step runs on the device given; scorers stay on the host.
            var (compute, deviceModels) = device.ApplyForSampling(ComputeContext.WithThreads(p.GetValue(threads)), p);
            using var deviceScope = deviceModels;
            using var computeScope = compute.Use();
            float scale = p.GetValue(cfgScale);
            double? budgetGflops = p.GetValue(budget);
            if (budgetGflops is double b0 && !(b0 > 0)) throw new MediatorDiTException($"--budget-gflops must be a positive number, got {b0}.");
            int refineCount = p.GetValue(refine);
            if (refineCount < 0) throw new MediatorDiTException($"--refine must be 0 or more, got {refineCount}.");
            int sampleCount = p.GetValue(samples);
            int refineSampleCount = p.GetValue(refineSamples) ?? 4 * sampleCount;
            if (refineCount > 0 && refineSampleCount < 2)
                throw new MediatorDiTException($"--refine-samples must be at least 2 (the Frechet scorer fits a covariance), got {refineSampleCount}.");
            string scorerName = p.GetValue(refineScorer)!.ToLowerInvariant();
            if (scorerName is not ("frechet" or "fid")) throw new MediatorDiTException($"--refine-scorer must be frechet or fid, got '{scorerName}'.");
            string proxyName = p.GetValue(proxyScorer)!.ToLowerInvariant();
            if (proxyName is not ("reference-rms" or "frechet" or "fid"))
                throw new MediatorDiTException($"--proxy must be reference-rms, frechet or fid, got '{proxyName}'.");
            if (proxyName != "reference-rms" && sampleCount < 2)
                throw new MediatorDiTException($"--proxy {proxyName} fits a covariance and needs --samples of at least 2, got {sampleCount}.");
            string outDir = p.GetValue(output)!;
            using var outFolder = FreshFolder.Create(outDir, "output folder"); // removed again if the run fails before writing to it

            string ladderText = p.GetValue(ladder)!;
            string[] paths = OptionValues.Split(ladderText);
            if (paths.Length is not (2 or 3))
                throw new MediatorDiTException($"--ladder names {paths.Length} weight files; the threshold grid is defined for ladders of 2 or 3 models.");
            var pipeline = DiffusionPipeline.LoadLadder(paths, new PipelineLoadOptions { ConfigPath = p.GetValue(config), Compute = compute, DeviceModels = deviceModels });
            sampler.CheckGuidance(p, pipeline.Config.InChannels);
            if (deviceModels is not null) Console.Error.WriteLine($"device: {deviceModels.DeviceName}");
            var generation = sampler.Generation(p, new GenerationOptions()).Validate();
            var modelLadder = pipeline.LadderFor(generation);
            var dist = sampler.ParseDistance(p);
            int[] labelList = p.GetValue(labels) is string ls ? OptionValues.Integers(ls, "--labels", "comma-separated class numbers such as 0,3,7") : [];

            bool sde = sampler.IsSde(p);
            var trajectories = pipeline.CreateSampler(generation);
            // For the `mdit sample` line written below: the same mode and method, defaults spelled out.
            string modeText = sde ? "sde" : "ode";
            string methodText = p.GetValue(method) ?? (sde ? "euler" : "dopri5");
            var options = new ThresholdSearchOptions
            {
                Samples = sampleCount, BatchSize = p.GetValue(batch), Seed = p.GetValue(seed), Labels = labelList.Length > 0 ? labelList : null,
                ReferenceSteps = p.GetValue(first), Distance = dist, ShareTrajectories = !p.GetValue(independent),
            }.Validate();
            var search = new ThresholdSearch(modelLadder, trajectories, options);
            using var renderer = ProgressRenderer.Create(p.GetValue(noProgress));
            // The FID scorer (classifier and the test split's statistics) is built only when asked for, and once.
            FidScorer? fid = null;
            SampleScorerFactory Scorer(string name) => name switch
            {
                "reference-rms" => SampleScorers.ReferenceDistance,
                "frechet" => SampleScorers.PooledFrechet(),
                _ => SampleScorers.Fixed(fid ??= BuildFid(p.GetValue(classifier), p.GetValue(dataset), p.GetValue(dataDir), modelLadder.SampleShape, renderer, token)),
            };
            var proxyFactory = Scorer(proxyName);
            var refiner = refineCount > 0 ? new ThresholdRefiner(Scorer(scorerName), refineSampleCount, refineCount) : null;
            if (budgetGflops is double b1 && b1 < search.LowerBoundGflopsPerImage)
                throw new MediatorDiTException(string.Create(CultureInfo.InvariantCulture,
                    $"no schedule fits the budget of {b1} GFLOPs per image: even the smallest model alone needs {search.LowerBoundGflopsPerImage:G6}; raise --budget-gflops to at least that."));

            var progress = new ImmediateProgress<ThresholdSearchProgress>(s =>
                renderer.Report(s.RunsDone, s.Runs, $"{s.Phase}: {s.NetworkCalls} network calls ({s.RequestedCalls} without sharing)"));
            int gridSize = search.Grid.Count;
            renderer.Message($"sweeping {gridSize} ratio pairs on {sampleCount} samples ({options.BatchSize} per batch) ...");
            var proxy = search.Search(proxyFactory, progress, token);
            ThresholdRefinement? refined = null;
            if (refiner is not null)
            {
                renderer.Done();
                renderer.Message($"refining up to {refineCount} frontier candidates on {refineSampleCount} samples ...");
                refined = refiner.Refine(search, proxy, budgetGflops, progress, token);
            }
            renderer.Done();

            string csvPath = Path.Combine(outDir, "pairs.csv"), svgPath = Path.Combine(outDir, "pareto.svg"), bestPath = Path.Combine(outDir, "best.json");
            ThresholdReport.WritePairsCsv(csvPath, proxy, refined);
            ChosenSchedule chosen;
            try
            {
                chosen = ThresholdSelection.Choose(proxy, refined, budgetGflops);
            }
            catch (MediatorDiTException e)
            {
                ParetoPlot.Write(svgPath, proxy, null);
                throw new MediatorDiTException($"{e.Message} (pairs.csv and pareto.svg are written to {outDir}.)", e);
            }
            ParetoPlot.Write(svgPath, proxy, chosen);

            // The `mdit sample` arguments that sample the chosen schedule on the same seed set.
            var inv = CultureInfo.InvariantCulture;
            var sampleArgs = new List<string> { "sample", "--ladder", ladderText };
            if (p.GetValue(config) is string configPath) sampleArgs.AddRange(["--config", configPath]);
            sampleArgs.AddRange(["--ratios", chosen.Pair.ToString(), "--first", options.ReferenceSteps.ToString(inv), "--distance", p.GetValue(distance)!]);
            sampleArgs.AddRange(["--mode", modeText, "--method", methodText, "--steps", p.GetValue(steps).ToString(inv)]);
            if (modeText == "sde")
                sampleArgs.AddRange(["--last-step", p.GetValue(lastStep)!, "--last-step-size", p.GetValue(lastStepSize).ToString("R", inv),
                    "--diffusion-form", p.GetValue(diffusionForm)!]);
            if (scale > 1f) sampleArgs.AddRange(["--cfg-scale", scale.ToString("R", inv)]);
            if (scale > 1f && p.GetValue(cfgAll) is bool all) sampleArgs.Add(all ? "--cfg-all-channels" : "--cfg-all-channels=false");
            if (labelList.Length > 0) sampleArgs.AddRange(["--labels", string.Join(",", labelList)]);
            sampleArgs.AddRange(["--num-images", sampleCount.ToString(inv), "--batch-size", options.BatchSize.ToString(inv), "--seed", options.Seed.ToString(inv)]);
            var best = new
            {
                ratios = chosen.Pair.Ratios,
                first = options.ReferenceSteps, // with ratios, a valid schedule.json for the ladder's folder
                gflops_per_image = chosen.GflopsPerImage,
                score = chosen.Score,
                chosen_by = chosen.ByRefinedScore ? "refined" : "proxy",
                scorer = chosen.ByRefinedScore ? refined!.ScorerName : proxy.ScorerName,
                budget_gflops = budgetGflops,
                largest_model_gflops_per_image = proxy.LargestModelGflopsPerImage,
                saving_vs_largest_model = 1 - chosen.GflopsPerImage / proxy.LargestModelGflopsPerImage,
                grid_pairs = gridSize,
                samples = sampleCount,
                seed = options.Seed,
                batch_size = options.BatchSize,
                network_calls = proxy.NetworkCalls,
                network_calls_without_sharing = proxy.RequestedCalls,
                refine = refined is null ? null : new
                {
                    scorer = refined.ScorerName,
                    samples = refined.Samples,
                    candidates = refined.Pairs.Select(r => new { ratios = r.Pair.Ratios, proxy_gflops = r.ProxyGflopsPerImage, proxy_score = r.ProxyScore, gflops = r.GflopsPerImage, score = r.Score }),
                    spearman = double.IsNaN(refined.Agreement.Spearman) ? (double?)null : refined.Agreement.Spearman,
                    on_both_frontiers = refined.Agreement.Kept.Select(i => proxy.Pairs[i].Pair.ToString()),
                    only_on_proxy_frontier = refined.Agreement.OnlyProxy.Select(i => proxy.Pairs[i].Pair.ToString()),
                    only_on_refined_frontier = refined.Agreement.OnlyRefined.Select(i => proxy.Pairs[i].Pair.ToString()),
                    network_calls = refined.NetworkCalls,
                    network_calls_without_sharing = refined.RequestedCalls,
                },
                sample_command = "mdit " + string.Join(" ", sampleArgs.Select(Quote)),
                sample_arguments = sampleArgs,
            };
            ThresholdReport.WriteText(bestPath, JsonSerializer.Serialize(best, new JsonSerializerOptions { WriteIndented = true }) + "\n");

            Console.WriteLine(string.Create(inv, $"{gridSize} pairs x {sampleCount} samples: {proxy.NetworkCalls} network calls instead of {proxy.RequestedCalls} ({(double)proxy.RequestedCalls / Math.Max(1, proxy.NetworkCalls):F1}x fewer by sharing prefixes)"));
            Console.WriteLine(string.Create(inv, $"frontier: {proxy.Frontier.Count} pairs; chosen ratios {chosen.Pair} by the {(chosen.ByRefinedScore ? "refined" : "proxy")} score: {chosen.GflopsPerImage:G6} GFLOPs per image ({100 * (1 - chosen.GflopsPerImage / proxy.LargestModelGflopsPerImage):F1}% less than the largest model alone)"));
            if (refined is not null)
                Console.WriteLine(string.Create(inv, $"refine: {refined.Pairs.Count} candidates on {refined.Samples} samples, Spearman {refined.Agreement.Spearman:F3}, {refined.Agreement.OnlyProxy.Count} proxy-frontier points off the refined frontier"));
            Console.WriteLine($"-> {csvPath}, {svgPath}, {bestPath}");
            return 0;
        }, token));
        return command;
    }

    /// <summary>FID against the test split of the classifier's dataset (fashion-mnist by default).</summary>
    private static FidScorer BuildFid(string? classifierPath, string? dataset, string? dataDir, IReadOnlyList<int> sampleShape,
        ProgressRenderer renderer, CancellationToken token)
    {
        string name = dataset ?? "fashion-mnist";
        ImageClassifier model;
        if (classifierPath is not null)
        {
            model = ImageClassifier.Load(classifierPath, out var metadata);
            if (dataset is null && metadata.TryGetValue("dataset", out var trained)) name = trained;
        }
        else
        {
            model = ImageClassifier.Load(ClassifierFiles.DefaultPath(name));
        }
        var c = model.Config;
        if (sampleShape[0] is not (1 or 3) || sampleShape[1] != c.ImageSize || sampleShape[2] != c.ImageSize)
            throw new MediatorDiTException($"fid scores pixel images the classifier takes ({c.InChannels} or 3 channels, {c.ImageSize}x{c.ImageSize}), but the ladder makes samples ({string.Join(", ", sampleShape)}); use --proxy reference-rms or frechet and --refine-scorer frechet for this ladder.");
        var evaluator = new SampleEvaluator(model);
        var reference = evaluator.Reference(name, Data.DatasetSplit.Test, dataDir, new ImmediateProgress<string>(renderer.Message), token);
        return new FidScorer(evaluator, reference);
    }

    private static string Quote(string s) => s.Length > 0 && s.All(ch => char.IsLetterOrDigit(ch) || "-_.,/=:+".Contains(ch)) ? s : "'" + s.Replace("'", "'\\''") + "'";
}
