using System.Diagnostics;
using MediatorDiT.Data;
using MediatorDiT.Nn;
using MediatorDiT.Tensors;
using MediatorDiT.Training;

namespace MediatorDiT.Evaluation;

/// <summary>Settings of <see cref="ClassifierTrainer"/>; the defaults are the recipe of the shipped classifiers (docs/EVALUATION.md).</summary>
public sealed record ClassifierTrainingOptions
{
    /// <summary>Passes over the training set.</summary>
    public int Epochs { get; init; } = 6;
    /// <summary>Images per step (capped at the training set's size).</summary>
    public int BatchSize { get; init; } = 128;

    /// <summary>Peak AdamW learning rate, reached after <see cref="WarmupSteps"/> and decayed to zero on a cosine.</summary>
    public double LearningRate { get; init; } = 2e-3;
    /// <summary>Steps of linear warm-up to <see cref="LearningRate"/>.</summary>
    public int WarmupSteps { get; init; } = 100;
    /// <summary>AdamW's decoupled weight decay.</summary>
    public double WeightDecay { get; init; } = 1e-4;

    /// <summary>Seeds the initialisation and the loader's shuffles.</summary>
    public ulong Seed { get; init; }

    /// <summary>Random left-right flips of the training images (off: digits are not mirror-symmetric).</summary>
    public bool HorizontalFlip { get; init; }

    /// <summary>Returns these options, or throws a <see cref="MediatorDiTException"/> naming the first impossible value.</summary>
    public ClassifierTrainingOptions Validate()
    {
        if (Epochs <= 0) throw new MediatorDiTException($"the number of epochs must be positive, got {Epochs}.");
        if (BatchSize <= 0) throw new MediatorDiTException($"the batch size must be positive, got {BatchSize}.");
        if (!(LearningRate > 0)) throw new MediatorDiTException($"the learning rate must be positive, got {LearningRate}.");
        return this;
    }
}

/// <summary>One report of <see cref="ClassifierTrainer.Train"/>: after a step, or with <see cref="TestAccuracy"/> at an epoch's end.</summary>
public sealed record ClassifierTrainingProgress(int Epoch, long Step, long TotalSteps, double Loss, double? TestAccuracy, TimeSpan Elapsed);

/// <summary>The trained classifier, its accuracy on the held-out split after each epoch, and the time taken.</summary>
public sealed record ClassifierTrainingResult(ImageClassifier Classifier, double TestAccuracy, IReadOnlyList<double> AccuracyPerEpoch, TimeSpan Elapsed);

/// <summary>
/// Trains an <see cref="ImageClassifier"/> with cross-entropy and AdamW (linear warm-up, cosine decay to zero)
/// on a labelled dataset and measures its accuracy on a second one after every epoch.
/// </summary>
public static class ClassifierTrainer
{
    /// <summary>Trains a new classifier of <paramref name="config"/> on <paramref name="train"/>, testing on <paramref name="test"/> after every epoch.</summary>
    /// <param name="config">The network's shape; its class count must cover the dataset's.</param>
    /// <param name="train">Labelled training images in the classifier's input shape, values in [-1, 1].</param>
    /// <param name="test">Held-out images for the accuracy.</param>
    /// <param name="options">Epochs, batch size, learning-rate schedule, seed and flips.</param>
    /// <param name="progress">Receives a report every 20 steps and, with the test accuracy, at every epoch's end.</param>
    /// <param name="cancellationToken">Stops training.</param>
    /// <exception cref="MediatorDiTException">An option is invalid or the dataset has more classes than the classifier.</exception>
    public static ClassifierTrainingResult Train(ClassifierConfig config, IDataset train, IDataset test, ClassifierTrainingOptions options,
        IProgress<ClassifierTrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        options.Validate();
        if (train.NumClasses > config.NumClasses)
            throw new MediatorDiTException($"the dataset has {train.NumClasses} classes, but the classifier only {config.NumClasses}.");
        var classifier = new ImageClassifier(config);
        classifier.Initialize(new RandomSource(options.Seed * 2 + 1));
        var loader = new DataLoader(train, new DataLoaderOptions
        {
            BatchSize = Math.Min(options.BatchSize, train.Count), Seed = options.Seed, Shuffle = true, DropLast = true, HorizontalFlip = options.HorizontalFlip,
        });
        var optimizer = new AdamW(classifier, options.LearningRate, weightDecay: options.WeightDecay);
        long total = (long)loader.BatchesPerEpoch * options.Epochs;
        var images = new Tensor(0);
        var labels = new int[loader.BatchSize];
        var dLogits = new Tensor(0);
        var accuracies = new List<double>();
        var clock = Stopwatch.StartNew();
        long step = 0;
        for (int epoch = 0; epoch < options.Epochs; epoch++)
        {
            double lossSum = 0;
            int lossCount = 0;
            for (int b = 0; b < loader.BatchesPerEpoch; b++, step++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var batch = loader.GetBatch(step, images, labels);
                var logits = classifier.Forward(batch.Images);
                dLogits.EnsureShape(logits.Shape);
                double loss = SoftmaxCrossEntropy.ForwardBackward(logits.Span, labels.AsSpan(0, batch.Size), config.NumClasses, dLogits.Span);
                if (!double.IsFinite(loss)) throw new MediatorDiTException($"the classifier's loss became {loss} at step {step}; lower the learning rate.");
                classifier.ZeroGrad();
                classifier.Backward(dLogits);
                optimizer.LearningRate = LearningRateAt(step, total, options);
                optimizer.Update();
                lossSum += loss;
                lossCount++;
                if (step % 20 == 0) progress?.Report(new ClassifierTrainingProgress(epoch + 1, step + 1, total, lossSum / lossCount, null, clock.Elapsed));
            }
            double accuracy = Accuracy(classifier, test, cancellationToken);
            accuracies.Add(accuracy);
            progress?.Report(new ClassifierTrainingProgress(epoch + 1, step, total, lossSum / Math.Max(1, lossCount), accuracy, clock.Elapsed));
        }
        return new ClassifierTrainingResult(classifier, accuracies[^1], accuracies, clock.Elapsed);
    }

    /// <summary>Linear warm-up to the peak over the first steps, then half a cosine down to zero at the last step.</summary>
    public static double LearningRateAt(long step, long totalSteps, ClassifierTrainingOptions options)
    {
        if (step < options.WarmupSteps) return options.LearningRate * (step + 1) / options.WarmupSteps;
        double progress = (double)(step - options.WarmupSteps) / Math.Max(1, totalSteps - options.WarmupSteps);
        return options.LearningRate * 0.5 * (1 + Math.Cos(Math.PI * Math.Clamp(progress, 0, 1)));
    }

    /// <summary>Fraction of the dataset's samples whose most probable class is their label.</summary>
    public static double Accuracy(ImageClassifier classifier, IDataset dataset, CancellationToken cancellationToken = default)
    {
        var outputs = FeatureExtractor.Extract(classifier, dataset, out int[] labels, cancellationToken: cancellationToken);
        return ClassAgreement.Compute(outputs, labels);
    }
}
