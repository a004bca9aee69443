using System.CommandLine;
using System.Globalization;
using MediatorDiT.Cli.Rendering;
using MediatorDiT.Data;
using MediatorDiT.Evaluation;

namespace MediatorDiT.Cli.Commands;

/// <summary>
/// `mdit train-classifier`: trains the small CNN the sample-quality metrics use on a built-in dataset's
/// training split, as the diffusion models see it ((1, 32, 32) in [-1, 1]), reports the test accuracy
/// and writes the weights with the recipe and accuracy in the safetensors metadata.
/// </summary>
public static class TrainClassifierCommand
{
    public static Command Create()
    {
        var dataset = new Option<string>("--dataset") { Description = "fashion-mnist or mnist", DefaultValueFactory = _ => "fashion-mnist" };
        var output = new Option<string?>("--out") { Description = "weights file (default models/classifier-<dataset>.safetensors)" };
        var epochs = new Option<int>("--epochs") { DefaultValueFactory = _ => new ClassifierTrainingOptions().Epochs }.AtLeast(1);
        var batch = new Option<int>("--batch-size") { DefaultValueFactory = _ => new ClassifierTrainingOptions().BatchSize }.BatchSize();
        var lr = new Option<double>("--lr") { DefaultValueFactory = _ => new ClassifierTrainingOptions().LearningRate };
        var seed = new Option<ulong>("--seed") { DefaultValueFactory = _ => 0 };
        var imageSize = new Option<int>("--image-size") { Description = "side S the images are padded to, as in training (default 32)", DefaultValueFactory = _ => 32 }.ImageSize(multiple: 1);
        var dataDir = new Option<string?>("--data-dir") { Description = "where built-in datasets are cached" };
        var threads = new Option<int?>("--threads").Threads();
        var noProgress = new Option<bool>("--no-progress");
        var command = new Command("train-classifier", "Train the feature classifier the sample-quality metrics use on a built-in dataset.")
        {
            dataset, output, epochs, batch, lr, seed, imageSize, dataDir, threads, noProgress,
        };
        command.SetAction((p, token) => CliApp.Guard(() =>
        {
            using var compute = Tensors.ComputeContext.WithThreads(p.GetValue(threads)).Use();
            string name = p.GetValue(dataset)!;
            string outPath = CliApp.OutputFile(p.GetValue(output) ?? Path.Combine("models", ClassifierFiles.FileName(name)));
            var options = new ClassifierTrainingOptions
            {
                Epochs = p.GetValue(epochs), BatchSize = p.GetValue(batch), LearningRate = p.GetValue(lr), Seed = p.GetValue(seed),
            }.Validate();
            using var renderer = ProgressRenderer.Create(p.GetValue(noProgress));
            var messages = new ImmediateProgress<string>(renderer.Message);
            var preprocessing = new PixelPreprocessing { TargetSize = p.GetValue(imageSize) };
            var images = DatasetCache.Ensure(name, p.GetValue(dataDir), messages, token);
            var train = new PixelDataset(images, DatasetSplit.Train, preprocessing);
            var test = new PixelDataset(images, DatasetSplit.Test, preprocessing);
            var config = new ClassifierConfig { ImageSize = preprocessing.TargetSize, NumClasses = train.NumClasses };
            var result = ClassifierTrainer.Train(config, train, test, options, new ImmediateProgress<ClassifierTrainingProgress>(r =>
            {
                if (r.TestAccuracy is double acc) renderer.Message($"epoch {r.Epoch}: loss {r.Loss:F4}, test accuracy {100 * acc:F2}% ({r.Elapsed.TotalSeconds:F0} s)");
                else renderer.Report(r.Step, r.TotalSteps, $"epoch {r.Epoch}  loss {r.Loss:F4}");
            }), token);
            renderer.Done();
            var inv = CultureInfo.InvariantCulture;
            result.Classifier.Save(outPath, new Dictionary<string, string>
            {
                ["dataset"] = name,
                ["train_images"] = train.Count.ToString(inv),
                ["test_images"] = test.Count.ToString(inv),
                ["test_accuracy"] = result.TestAccuracy.ToString("R", inv),
                ["recipe"] = $"epochs={options.Epochs} batch={options.BatchSize} lr={options.LearningRate.ToString(inv)} warmup={options.WarmupSteps} weight_decay={options.WeightDecay.ToString(inv)} seed={options.Seed} adamw cosine",
            });
            Console.WriteLine(string.Create(inv, $"test accuracy {100 * result.TestAccuracy:F2}% on {test.Count} {name} test images after {options.Epochs} epochs ({result.Elapsed.TotalSeconds:F0} s) -> {outPath}"));
            return 0;
        }, token));
        return command;
    }
}
