using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using MediatorDiT.Cli.Rendering;
using MediatorDiT.Data;
using MediatorDiT.Evaluation;

namespace MediatorDiT.Cli.Commands;

/// <summary>
/// `mdit eval`: scores samples (an .npz or a folder of images, PNGs from `mdit sample` or JPEG/WebP files) against a split of a
/// built-in dataset with the library's classifier, and prints the floor: the real test split against
/// the real training split, the score a perfect generator would get.
/// </summary>
public static class EvalCommand
{
    public static Command Create()
    {
        var samples = new Option<string?>("--samples") { Description = "samples.npz (arr_0 uint8 NHWC) or a folder of PNG/JPEG/WebP images (without it: only the floor)" };
        var reference = new Option<string>("--reference") { Description = "test or train split of the dataset", DefaultValueFactory = _ => "test" };
        var dataset = new Option<string?>("--dataset") { Description = "fashion-mnist or mnist (default: the classifier's dataset, else fashion-mnist)" };
        var classifier = new Option<string?>("--classifier") { Description = "classifier weights (default models/classifier-<dataset>.safetensors)" };
        var labelsFrom = new Option<string?>("--labels-from") { Description = "run.json, an npz array name (arr_1) or none (default: arr_1, else run.json beside the samples)" };
        var k = new Option<int>("--k") { Description = "neighbourhood size of precision/recall", DefaultValueFactory = _ => 3 }.AtLeast(1);
        var noFloor = new Option<bool>("--no-floor") { Description = "skip the test-vs-train floor" };
        var json = new Option<string?>("--json") { Description = "also write the metrics to this JSON file" };
        var dataDir = new Option<string?>("--data-dir") { Description = "where built-in datasets (and cached reference statistics) live" };
        var threads = new Option<int?>("--threads").Threads();
        var command = new Command("eval", "Score samples with FID, precision/recall, an Inception-Score analogue and class agreement.")
        {
            samples, reference, dataset, classifier, labelsFrom, k, noFloor, json, dataDir, threads,
        };
        var limitOptions = new InputLimitOptions(command, arrays: true);
        command.SetAction((p, token) => CliApp.Guard(() =>
        {
            using var compute = Tensors.ComputeContext.WithThreads(p.GetValue(threads)).Use();
            var split = p.GetValue(reference)!.ToLowerInvariant() switch
            {
                "test" => DatasetSplit.Test,
                "train" => DatasetSplit.Train,
                var other => throw new MediatorDiTException($"--reference must be test or train, got '{other}'."),
            };
            string? jsonPath = p.GetValue(json) is string jp ? CliApp.OutputFile(jp, "--json") : null;
            if (p.GetValue(samples) is null && p.GetValue(noFloor))
                throw new MediatorDiTException("nothing to do: give --samples, or drop --no-floor to print the test-vs-train floor.");
            var set = p.GetValue(samples) is string samplesPath ? SampleFiles.Load(samplesPath, p.GetValue(labelsFrom), limitOptions.Read(p)) : null;

            string? classifierPath = p.GetValue(classifier);
            IReadOnlyDictionary<string, string> metadata = new Dictionary<string, string>();
            string name = p.GetValue(dataset) ?? "fashion-mnist";
            ImageClassifier model;
            if (classifierPath is not null)
            {
                model = ImageClassifier.Load(classifierPath, out metadata);
                if (p.GetValue(dataset) is null && metadata.TryGetValue("dataset", out var trained)) name = trained;
            }
            else
            {
                classifierPath = ClassifierFiles.DefaultPath(name);
                model = ImageClassifier.Load(classifierPath, out metadata);
            }
            if (metadata.TryGetValue("dataset", out var classifierDataset) && classifierDataset != name)
                Console.Error.WriteLine($"warning: the classifier {classifierPath} was trained on {classifierDataset}, not {name}.");
            set?.CheckLabels(model.Config.NumClasses);
            var evaluator = new SampleEvaluator(model, new EvaluationOptions { K = p.GetValue(k) });
            using var renderer = ProgressRenderer.Create(plain: true);
            var messages = new ImmediateProgress<string>(renderer.Message);
            string? dir = p.GetValue(dataDir);
            var referenceStats = evaluator.Reference(name, split, dir, messages, token);
            var report = set is null ? null : evaluator.Evaluate(set.Images, set.Labels, referenceStats, token);
            var inv = CultureInfo.InvariantCulture;
            Console.WriteLine($"classifier {classifierPath}" + (metadata.TryGetValue("test_accuracy", out var acc) && double.TryParse(acc, NumberStyles.Float, inv, out double accuracy) ? string.Create(inv, $" (test accuracy {100 * accuracy:F2}%)") : ""));
            if (set is not null) Console.WriteLine($"samples {set.Source}: {report!.Count} images, labels from {set.LabelSource}");
            PrintHeader();
            if (report is not null) Print($"samples vs {referenceStats.Name}", report);

            QualityReport? floor = null;
            if (!p.GetValue(noFloor))
            {
                var test = split == DatasetSplit.Test ? referenceStats : evaluator.Reference(name, DatasetSplit.Test, dir, messages, token);
                var train = split == DatasetSplit.Train ? referenceStats : evaluator.Reference(name, DatasetSplit.Train, dir, messages, token);
                floor = evaluator.Evaluate(test.Outputs, test.Labels, train, token);
                Print($"floor: {test.Name} vs {train.Name}", floor);
            }
            if (jsonPath is not null)
            {
                var doc = new { classifier = classifierPath, samples = set?.Source, labels = set?.LabelSource, k = evaluator.Options.K, result = report, floor };
                // Temp file in the same folder, then rename: a cancelled run never leaves half a file.
                string temp = jsonPath + ".tmp";
                try
                {
                    File.WriteAllText(temp, JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true }));
                    File.Move(temp, jsonPath, overwrite: true);
                }
                catch
                {
                    File.Delete(temp);
                    throw;
                }
            }
            return 0;
        }, token));
        return command;
    }

    private static void PrintHeader() =>
        Console.WriteLine($"{"",-44} {"FID",9} {"precision",9} {"recall",9} {"IS",8} {"class agr.",10}");

    private static void Print(string what, QualityReport r)
    {
        var inv = CultureInfo.InvariantCulture;
        string agreement = r.ClassAgreement is double a ? a.ToString("F4", inv) : "-";
        Console.WriteLine(string.Create(inv, $"{what,-44} {r.Fid,9:F3} {r.Precision,9:F4} {r.Recall,9:F4} {r.InceptionScore,8:F3} {agreement,10}"));
    }
}
