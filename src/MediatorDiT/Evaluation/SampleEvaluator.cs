using System.Collections.Concurrent;
using System.Security.Cryptography;
using MediatorDiT.Data;
using MediatorDiT.Tensors;

namespace MediatorDiT.Evaluation;

/// <summary>
/// Scores generated images against a reference split of a built-in dataset with the library's
/// classifier: FID, precision and recall (k-NN manifolds), the Inception-Score analogue and class agreement.
/// <code>
/// var evaluator = SampleEvaluator.ForDataset("fashion-mnist");            // models/classifier-fashion-mnist.safetensors
/// var reference = evaluator.Reference("fashion-mnist", DatasetSplit.Test); // computed once, then cached on disk
/// QualityReport r = evaluator.Evaluate(images, labels, reference);         // images (N, 1, 32, 32) in [-1, 1]
/// </code>
/// Evaluate may be called from several threads; the calls take turns on the classifier.
/// </summary>
public sealed class SampleEvaluator
{
    private readonly object _gate = new();
    private readonly ConcurrentDictionary<string, ReferenceStatistics> _references = new();

    /// <summary>An evaluator that scores with <paramref name="classifier"/>.</summary>
    /// <param name="classifier">The trained classifier; its fingerprint is computed here.</param>
    /// <param name="options">k, manifold cap, batch size, caching; null: the defaults.</param>
    /// <exception cref="MediatorDiTException">An option is invalid.</exception>
    public SampleEvaluator(ImageClassifier classifier, EvaluationOptions? options = null)
    {
        Classifier = classifier;
        Options = (options ?? new EvaluationOptions()).Validate();
        Fingerprint = ComputeFingerprint(classifier);
    }

    /// <summary>The feature extractor.</summary>
    public ImageClassifier Classifier { get; }
    /// <summary>The validated settings.</summary>
    public EvaluationOptions Options { get; }

    /// <summary>SHA-256 (hex) of the classifier's config and weights; names its cached reference statistics.</summary>
    public string Fingerprint { get; }

    /// <summary>An evaluator with the classifier stored at <paramref name="classifierPath"/>.</summary>
    public static SampleEvaluator Load(string classifierPath, EvaluationOptions? options = null) =>
        new(ImageClassifier.Load(classifierPath), options);

    /// <summary>An evaluator with the shipped classifier of a built-in dataset (<see cref="ClassifierFiles.DefaultPath"/>).</summary>
    public static SampleEvaluator ForDataset(string dataset, EvaluationOptions? options = null) =>
        Load(ClassifierFiles.DefaultPath(dataset), options);

    /// <summary>
    /// The reference statistics of a split of a built-in dataset, as the diffusion models see it
    /// (padded to the classifier's input size). Kept in memory, and on disk under
    /// <c>&lt;dataDir&gt;/&lt;dataset&gt;/reference-&lt;split&gt;-&lt;fingerprint&gt;.safetensors</c> (or
    /// <see cref="EvaluationOptions.CacheFolder"/>), so only the first call extracts features.
    /// </summary>
    public ReferenceStatistics Reference(string dataset, DatasetSplit split, string? dataDir = null, IProgress<string>? progress = null,
        CancellationToken cancellationToken = default)
    {
        string key = $"{dataset}/{split}/{DatasetCache.ResolveDataDir(dataDir)}";
        if (_references.TryGetValue(key, out var known)) return known;
        var images = DatasetCache.Ensure(dataset, dataDir, progress, cancellationToken);
        string folder = Options.CacheFolder ?? images.CacheFolder;
        string path = Path.Combine(folder, $"reference-{split.ToString().ToLowerInvariant()}-{Fingerprint[..16]}-k{Options.K}.safetensors");
        var stats = ReferenceStatistics.TryLoad(path, Fingerprint, Options.K, Options.MaxManifoldPoints);
        if (stats is null)
        {
            var preprocessing = new PixelPreprocessing { TargetSize = Classifier.Config.ImageSize };
            var set = new PixelDataset(images, split, preprocessing);
            progress?.Report($"{dataset} {split.ToString().ToLowerInvariant()}: extracting features of {set.Count} images");
            ClassifierOutputs outputs;
            int[] labels;
            lock (_gate) outputs = FeatureExtractor.Extract(Classifier, set, out labels, Options.BatchSize, progress, cancellationToken);
            stats = new ReferenceStatistics($"{dataset} {split.ToString().ToLowerInvariant()}", outputs, labels, Fingerprint, Options.K, Options.MaxManifoldPoints, cancellationToken);
            try
            {
                Directory.CreateDirectory(folder);
                stats.Save(path);
                progress?.Report($"cached the reference statistics in {path}");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or MediatorDiTException)
            {
                progress?.Report($"warning: the reference statistics could not be cached in {path} ({e.Message.TrimEnd('.')})");
            }
        }
        _references[key] = stats;
        return stats;
    }

    /// <summary>Reference statistics of any images (N, C, S, S) in [-1, 1], e.g. a custom real set.</summary>
    public ReferenceStatistics Reference(string name, Tensor images, int[]? labels = null, CancellationToken cancellationToken = default)
    {
        var outputs = Extract(images, cancellationToken);
        return new ReferenceStatistics(name, outputs, labels, Fingerprint, Options.K, Options.MaxManifoldPoints, cancellationToken);
    }

    /// <summary>
    /// Scores images (N, C, H, W) in [-1, 1] (C = the classifier's channels, or 3 for RGB, reduced to
    /// luma; H = W = the classifier's input size; N &gt; k) against <paramref name="reference"/>.
    /// <paramref name="labels"/> (one per image, or null) are the classes the images were generated for.
    /// </summary>
    public QualityReport Evaluate(Tensor images, int[]? labels, ReferenceStatistics reference, CancellationToken cancellationToken = default)
    {
        if (labels is not null && labels.Length != images.Dim(0))
            throw new MediatorDiTException($"{labels.Length} labels were given for {images.Dim(0)} images; give one per image or none.");
        return Evaluate(Extract(images, cancellationToken), labels, reference, cancellationToken);
    }

    /// <summary>Scores classifier outputs already extracted (e.g. of a real split, for the floor).</summary>
    public QualityReport Evaluate(ClassifierOutputs outputs, int[]? labels, ReferenceStatistics reference, CancellationToken cancellationToken = default)
    {
        if (reference.ClassifierFingerprint != Fingerprint)
            throw new MediatorDiTException($"the reference statistics '{reference.Name}' were computed with another classifier; compute them with this evaluator's Reference.");
        if (outputs.Count <= Options.K)
            throw new MediatorDiTException($"the metrics need more than k = {Options.K} images, got {outputs.Count}.");
        if (labels is not null && labels.Length != outputs.Count)
            throw new MediatorDiTException($"{labels.Length} labels were given for {outputs.Count} images; give one per image or none.");
        foreach (int label in labels ?? [])
            if ((uint)label >= (uint)outputs.Classes)
                throw new MediatorDiTException($"label {label} is outside the classifier's classes 0..{outputs.Classes - 1}.");
        var gaussian = GaussianStatistics.FromFeatures(outputs.Features, outputs.Count, outputs.FeatureDim);
        double fid = FrechetDistance.Compute(gaussian, reference.Gaussian);
        var (points, n) = PrecisionRecall.Thin(outputs.Features, outputs.Count, outputs.FeatureDim, Options.MaxManifoldPoints);
        var manifold = KnnManifold.Build(points, n, outputs.FeatureDim, Options.K, cancellationToken);
        var (precision, recall) = PrecisionRecall.Compute(reference.Manifold, manifold, cancellationToken);
        return new QualityReport
        {
            Fid = fid,
            Precision = precision,
            Recall = recall,
            InceptionScore = InceptionScore.Compute(outputs),
            ClassAgreement = labels is null ? null : ClassAgreement.Compute(outputs, labels),
            Count = outputs.Count,
            Reference = reference.Describe(),
            K = Options.K,
        };
    }

    /// <summary>Features and probabilities of images (see <see cref="Evaluate(Tensor, int[], ReferenceStatistics, CancellationToken)"/> for the accepted shapes).</summary>
    public ClassifierOutputs Extract(Tensor images, CancellationToken cancellationToken = default)
    {
        var input = Prepare(images);
        lock (_gate) return FeatureExtractor.Extract(Classifier, input, Options.BatchSize, cancellationToken);
    }

    private Tensor Prepare(Tensor images)
    {
        var cfg = Classifier.Config;
        if (images.Rank != 4 || images.Dim(0) == 0 || images.Dim(2) != cfg.ImageSize || images.Dim(3) != cfg.ImageSize ||
            (images.Dim(1) != cfg.InChannels && !(images.Dim(1) == 3 && cfg.InChannels == 1)))
            throw new MediatorDiTException($"the evaluator takes images (N, {cfg.InChannels}{(cfg.InChannels == 1 ? " or 3" : "")}, {cfg.ImageSize}, {cfg.ImageSize}) in [-1, 1], not [{images.ShapeString}].");
        int n = images.Dim(0), plane = cfg.ImageSize * cfg.ImageSize, c = images.Dim(1);
        if (c == cfg.InChannels && !Options.QuantizeTo8Bit) return images;
        var result = new Tensor(n, cfg.InChannels, cfg.ImageSize, cfg.ImageSize);
        var src = images.Span;
        var dst = result.Span;
        if (c == cfg.InChannels)
        {
            for (int i = 0; i < dst.Length; i++) dst[i] = ImageConversion.ToFloat(ImageConversion.ToByte(src[i]));
            return result;
        }
        // RGB to one channel: the bytes' luma as DecodedImage.ToGrey computes it (grey images stored as RGB come back unchanged).
        for (int b = 0; b < n; b++)
        for (int p = 0; p < plane; p++)
        {
            int o = b * 3 * plane + p;
            int r = ImageConversion.ToByte(src[o]), g = ImageConversion.ToByte(src[o + plane]), bl = ImageConversion.ToByte(src[o + 2 * plane]);
            byte luma = (byte)((r * 19595 + g * 38470 + bl * 7471 + 0x8000) >> 16);
            dst[b * plane + p] = ImageConversion.ToFloat(luma);
        }
        return result;
    }

    private static string ComputeFingerprint(ImageClassifier classifier)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(System.Text.Encoding.UTF8.GetBytes(classifier.Config.ToJson()));
        foreach (var p in classifier.Parameters)
        {
            hash.AppendData(System.Text.Encoding.UTF8.GetBytes(p.Name));
            hash.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(p.Value.Span));
        }
        return Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant();
    }
}
