using System.Globalization;
using MediatorDiT.IO;
using MediatorDiT.Tensors;

namespace MediatorDiT.Evaluation;

/// <summary>
/// What the metrics need of a reference set (a dataset split), computed once with one classifier:
/// its features (N, D) and labels, their Gaussian fit (FID), the k-NN manifold of up to
/// <see cref="EvaluationOptions.MaxManifoldPoints"/> evenly spaced features with their radii
/// (precision/recall), and the Inception-Score analogue of the set itself. Saved as safetensors
/// (features, probabilities, labels, mu_f64, sigma_f64, manifold_points, manifold_radii2) with the classifier's fingerprint in
/// the metadata, so a retrained classifier never reuses stale statistics.
/// </summary>
public sealed class ReferenceStatistics
{
    /// <summary>Fits the Gaussian, builds the k-NN manifold and computes the Inception Score of a reference set's outputs.</summary>
    /// <param name="name">The set's name, e.g. "fashion-mnist test".</param>
    /// <param name="outputs">The classifier's outputs for every reference image (at least 2).</param>
    /// <param name="labels">The images' labels (N), or null.</param>
    /// <param name="classifierFingerprint">The fingerprint of the classifier that produced <paramref name="outputs"/>.</param>
    /// <param name="k">The k of the manifold.</param>
    /// <param name="maxManifoldPoints">At most this many evenly spaced features form the manifold.</param>
    /// <param name="cancellationToken">Stops the manifold's distance computation.</param>
    /// <exception cref="ArgumentException">The label count differs from the image count.</exception>
    public ReferenceStatistics(string name, ClassifierOutputs outputs, int[]? labels, string classifierFingerprint, int k, int maxManifoldPoints,
        CancellationToken cancellationToken = default)
        : this(name, outputs, labels, classifierFingerprint,
            GaussianStatistics.FromFeatures(outputs.Features, outputs.Count, outputs.FeatureDim),
            BuildManifold(outputs.Features, outputs.Count, outputs.FeatureDim, k, maxManifoldPoints, cancellationToken),
            MediatorDiT.Evaluation.InceptionScore.Compute(outputs), maxManifoldPoints)
    {
    }

    private ReferenceStatistics(string name, ClassifierOutputs outputs, int[]? labels, string fingerprint,
        GaussianStatistics gaussian, KnnManifold manifold, double inceptionScore, int maxManifoldPoints)
    {
        if (labels is not null && labels.Length != outputs.Count)
            throw new ArgumentException($"{labels.Length} labels for {outputs.Count} images.");
        Name = name;
        Outputs = outputs;
        Labels = labels;
        ClassifierFingerprint = fingerprint;
        Gaussian = gaussian;
        Manifold = manifold;
        InceptionScore = inceptionScore;
        MaxManifoldPoints = maxManifoldPoints;
    }

    /// <summary>E.g. "fashion-mnist test".</summary>
    public string Name { get; }
    /// <summary>The classifier's features and probabilities of every reference image.</summary>
    public ClassifierOutputs Outputs { get; }
    /// <summary>The reference features (Count, FeatureDim), row-major.</summary>
    public float[] Features => Outputs.Features;
    /// <summary>Reference images.</summary>
    public int Count => Outputs.Count;
    /// <summary>Features per image.</summary>
    public int FeatureDim => Outputs.FeatureDim;
    /// <summary>The reference images' labels, or null.</summary>
    public int[]? Labels { get; }
    /// <summary>Fingerprint of the classifier the statistics were computed with (<see cref="SampleEvaluator.Fingerprint"/>).</summary>
    public string ClassifierFingerprint { get; }
    /// <summary>The Gaussian fit of the features (FID).</summary>
    public GaussianStatistics Gaussian { get; }
    /// <summary>The k-NN manifold of up to <see cref="MaxManifoldPoints"/> features (precision and recall).</summary>
    public KnnManifold Manifold { get; }
    /// <summary>The Inception-Score analogue of the reference set itself.</summary>
    public double InceptionScore { get; }
    /// <summary>The cap on manifold points the statistics were built with.</summary>
    public int MaxManifoldPoints { get; }
    /// <summary>The k of the manifold.</summary>
    public int K => Manifold.K;

    /// <summary>The name and size, e.g. "fashion-mnist test (10000 images)".</summary>
    public string Describe() => string.Create(CultureInfo.InvariantCulture, $"{Name} ({Count} images)");

    private static KnnManifold BuildManifold(float[] features, int count, int dimension, int k, int maxPoints, CancellationToken token)
    {
        var (points, n) = PrecisionRecall.Thin(features, count, dimension, maxPoints);
        return KnnManifold.Build(points == features ? (float[])features.Clone() : points, n, dimension, k, token);
    }

    /// <summary>Writes the statistics and the classifier's fingerprint as safetensors to <paramref name="path"/>, atomically.</summary>
    /// <param name="path">The file to write.</param>
    public void Save(string path)
    {
        var inv = CultureInfo.InvariantCulture;
        var tensors = new Dictionary<string, StoredTensor>
        {
            ["features"] = StoredTensor.FromFloat(Features, [Count, FeatureDim]),
            ["probabilities"] = StoredTensor.FromFloat(Outputs.Probabilities, [Count, Outputs.Classes]),
            ["mu_f64"] = F64(Gaussian.Mean, [FeatureDim]),
            ["sigma_f64"] = F64(Gaussian.Covariance, [FeatureDim, FeatureDim]),
            ["manifold_points"] = StoredTensor.FromFloat(Manifold.Points, [Manifold.Count, FeatureDim]),
            ["manifold_radii2"] = StoredTensor.FromFloat(Manifold.RadiiSquared, [Manifold.Count]),
        };
        if (Labels is not null) tensors["labels"] = StoredTensor.FromInt64(Labels.Select(l => (long)l).ToArray(), [Labels.Length]);
        SafeTensors.Write(path, tensors, new Dictionary<string, string>
        {
            ["name"] = Name,
            ["classifier_sha256"] = ClassifierFingerprint,
            ["k"] = K.ToString(inv),
            ["max_manifold_points"] = MaxManifoldPoints.ToString(inv),
            ["inception_score"] = InceptionScore.ToString("R", inv),
        });
    }

    /// <summary>Reads a saved set, or returns null when the file was made with another classifier, k or cap (or is unreadable).</summary>
    public static ReferenceStatistics? TryLoad(string path, string classifierFingerprint, int k, int maxManifoldPoints)
    {
        if (!File.Exists(path)) return null;
        try
        {
            var file = SafeTensors.Read(path);
            var inv = CultureInfo.InvariantCulture;
            if (file.Metadata.GetValueOrDefault("classifier_sha256") != classifierFingerprint ||
                file.Metadata.GetValueOrDefault("k") != k.ToString(inv) ||
                file.Metadata.GetValueOrDefault("max_manifold_points") != maxManifoldPoints.ToString(inv))
                return null;
            var features = file.GetFloat("features");
            var probabilities = file.GetFloat("probabilities");
            int count = features.Dim(0), dimension = features.Dim(1);
            var outputs = new ClassifierOutputs(features.Span.ToArray(), probabilities.Span.ToArray(), count, dimension, probabilities.Dim(1));
            var mean = ToDoubles(file.Get("mu_f64"));
            var cov = ToDoubles(file.Get("sigma_f64"));
            var points = file.GetFloat("manifold_points");
            var radii = file.GetFloat("manifold_radii2");
            int[]? labels = file.Contains("labels") ? file.GetInt64("labels").Select(l => (int)l).ToArray() : null;
            var manifold = KnnManifold.FromStored(points.Data.AsSpan(0, points.Length).ToArray(), points.Dim(0), dimension, k, radii.Span.ToArray());
            double score = double.Parse(file.Metadata["inception_score"], inv);
            return new ReferenceStatistics(file.Metadata["name"], outputs, labels, classifierFingerprint,
                new GaussianStatistics(mean, cov), manifold, score, maxManifoldPoints);
        }
        catch (Exception e) when (e is MediatorDiTException or KeyNotFoundException or FormatException or ArgumentException or IOException)
        {
            return null;
        }
    }

    private static StoredTensor F64(double[] values, int[] shape)
    {
        var bytes = new byte[values.Length * 8];
        for (int i = 0; i < values.Length; i++) System.Buffers.Binary.BinaryPrimitives.WriteDoubleLittleEndian(bytes.AsSpan(i * 8), values[i]);
        return new StoredTensor(DType.F64, shape, bytes);
    }

    private static double[] ToDoubles(StoredTensor t)
    {
        if (t.DType != DType.F64) throw new MediatorDiTException($"expected F64, found {t.DType}.");
        var span = t.Bytes.Span;
        var values = new double[t.ElementCount];
        for (int i = 0; i < values.Length; i++) values[i] = System.Buffers.Binary.BinaryPrimitives.ReadDoubleLittleEndian(span.Slice(i * 8, 8));
        return values;
    }
}
