using MediatorDiT.IO;
using MediatorDiT.Nn;
using MediatorDiT.Tensors;

namespace MediatorDiT.Evaluation;

/// <summary>
/// The small CNN whose features and class probabilities the sample-quality metrics use (the role
/// Inception-v3 plays for ImageNet). Per block i: conv3x3 (pad 1) -> ReLU -> 2x2 max pool; then
/// fc1 -> ReLU (the penultimate features, (B, Hidden)) and fc2 -> logits (B, classes).
/// Parameter names follow a PyTorch nn.Module with attributes conv1..convL, fc1, fc2.
/// Forward keeps its activations for <see cref="Backward"/>; buffers grow with the batch and are reused.
/// One forward/backward at a time (not thread-safe).
/// </summary>
public sealed class ImageClassifier : IParameterSet
{
    /// <summary>The safetensors metadata key that holds the <see cref="ClassifierConfig"/> as JSON.</summary>
    public const string ConfigMetadataKey = "classifier_config";

    private readonly Parameter[] _convW, _convB;
    private readonly Parameter _fc1W, _fc1B, _fc2W, _fc2B;
    private readonly Conv2dGeometry[] _geometry;
    private readonly int[] _sizes; // input side of block i
    private readonly Tensor[] _act, _pooled, _dAct, _dPooled;
    private readonly int[][] _argmax;
    private readonly Conv2dWorkspace _workspace = new();
    private readonly Tensor _features = new(0), _logits = new(0), _dFeatures = new(0);
    private Tensor? _input;
    private int _batch;

    /// <summary>A classifier of <paramref name="config"/>'s shape with zero weights; call <see cref="Initialize"/> or load weights.</summary>
    /// <param name="config">The shape; validated.</param>
    /// <exception cref="MediatorDiTException">The config is invalid.</exception>
    public ImageClassifier(ClassifierConfig config)
    {
        Config = config.Validate();
        int blocks = config.Widths.Length;
        _convW = new Parameter[blocks];
        _convB = new Parameter[blocks];
        _geometry = new Conv2dGeometry[blocks];
        _sizes = new int[blocks];
        _act = new Tensor[blocks];
        _pooled = new Tensor[blocks];
        _dAct = new Tensor[blocks];
        _dPooled = new Tensor[blocks];
        _argmax = new int[blocks][];
        var parameters = new List<Parameter>();
        int channels = config.InChannels, size = config.ImageSize;
        for (int i = 0; i < blocks; i++)
        {
            _geometry[i] = Conv2dGeometry.Square(channels, config.Widths[i], 3, 1, 1);
            _sizes[i] = size;
            _convW[i] = new Parameter($"conv{i + 1}.weight", _geometry[i].WeightShape);
            _convB[i] = new Parameter($"conv{i + 1}.bias", [config.Widths[i]]);
            parameters.Add(_convW[i]);
            parameters.Add(_convB[i]);
            (_act[i], _pooled[i], _dAct[i], _dPooled[i], _argmax[i]) = (new Tensor(0), new Tensor(0), new Tensor(0), new Tensor(0), []);
            channels = config.Widths[i];
            size /= 2;
        }
        _fc1W = new Parameter("fc1.weight", [config.Hidden, config.FlatFeatures]);
        _fc1B = new Parameter("fc1.bias", [config.Hidden]);
        _fc2W = new Parameter("fc2.weight", [config.NumClasses, config.Hidden]);
        _fc2B = new Parameter("fc2.bias", [config.NumClasses]);
        parameters.AddRange([_fc1W, _fc1B, _fc2W, _fc2B]);
        Parameters = parameters;
    }

    /// <summary>The network's shape.</summary>
    public ClassifierConfig Config { get; }

    /// <summary>conv1..convL weights and biases, then fc1 and fc2, in PyTorch's order.</summary>
    public IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>Penultimate features of the last forward pass, (B, Hidden), after the ReLU.</summary>
    public Tensor Features => _features;

    /// <summary>Logits of the last forward pass, (B, classes).</summary>
    public Tensor Logits => _logits;

    /// <summary>
    /// PyTorch's default initialisation of nn.Conv2d and nn.Linear (kaiming_uniform with a = sqrt(5)):
    /// weights and biases uniform in +-1/sqrt(fan_in).
    /// </summary>
    public void Initialize(RandomSource rng)
    {
        foreach (var p in Parameters)
        {
            var owner = p.Name.EndsWith(".bias", StringComparison.Ordinal)
                ? Parameters.First(w => w.Name == p.Name[..^".bias".Length] + ".weight") : p;
            int fanIn = owner.Value.Length / owner.Value.Shape[0];
            float bound = 1f / MathF.Sqrt(fanIn);
            rng.FillUniform(p.Value.Span, -bound, bound);
        }
    }

    /// <summary>images (B, C, S, S) -> logits (B, classes); <see cref="Features"/> holds the penultimate activations.</summary>
    public Tensor Forward(Tensor images)
    {
        if (images.Rank != 4 || images.Dim(1) != Config.InChannels || images.Dim(2) != Config.ImageSize || images.Dim(3) != Config.ImageSize)
            throw new MediatorDiTException($"the classifier takes images ({Config.InChannels}, {Config.ImageSize}, {Config.ImageSize}), not [{images.ShapeString}].");
        int batch = images.Dim(0);
        _batch = batch;
        _input = images;
        ReadOnlySpan<float> x = images.Span;
        for (int i = 0; i < _geometry.Length; i++)
        {
            var g = _geometry[i];
            int s = _sizes[i];
            _act[i].EnsureShape(batch, g.OutChannels, s, s);
            Conv2dBatch.Forward(x, _convW[i].Value.Span, _convB[i].Value.Span, _act[i].Span, g, batch, s, s, _workspace);
            Relu.Forward(_act[i].Span, _act[i].Span);
            _pooled[i].EnsureShape(batch, g.OutChannels, s / 2, s / 2);
            if (_argmax[i].Length < _pooled[i].Length) _argmax[i] = new int[_pooled[i].Length];
            MaxPool2x2.Forward(_act[i].Span, _pooled[i].Span, _argmax[i], batch * g.OutChannels, s, s);
            x = _pooled[i].Span;
        }
        _features.EnsureShape(batch, Config.Hidden);
        Linear.Forward(x, _fc1W.Value.Span, _fc1B.Value.Span, _features.Span, batch, Config.FlatFeatures, Config.Hidden);
        Relu.Forward(_features.Span, _features.Span);
        _logits.EnsureShape(batch, Config.NumClasses);
        Linear.Forward(_features.Span, _fc2W.Value.Span, _fc2B.Value.Span, _logits.Span, batch, Config.Hidden, Config.NumClasses);
        return _logits;
    }

    /// <summary>Accumulates every parameter's gradient from dLogits (B, classes) of the last forward pass.</summary>
    public void Backward(Tensor dLogits)
    {
        if (_input is null || dLogits.Length != _batch * Config.NumClasses)
            throw new InvalidOperationException($"Backward needs dLogits ({_batch}, {Config.NumClasses}) of the last forward pass.");
        int batch = _batch, last = _geometry.Length - 1;
        _dFeatures.EnsureShape(batch, Config.Hidden);
        Linear.Backward(_features.Span, _fc2W.Value.Span, dLogits.Span, _fc2W.Grad!.Span, _fc2B.Grad!.Span, _dFeatures.Span,
            batch, Config.Hidden, Config.NumClasses);
        Relu.Backward(_features.Span, _dFeatures.Span, _dFeatures.Span);
        _dPooled[last].EnsureShape(_pooled[last].Shape);
        Linear.Backward(_pooled[last].Span, _fc1W.Value.Span, _dFeatures.Span, _fc1W.Grad!.Span, _fc1B.Grad!.Span, _dPooled[last].Span,
            batch, Config.FlatFeatures, Config.Hidden);
        for (int i = last; i >= 0; i--)
        {
            var g = _geometry[i];
            int s = _sizes[i];
            _dAct[i].EnsureShape(_act[i].Shape);
            MaxPool2x2.Backward(_dPooled[i].Span, _argmax[i], _dAct[i].Span, batch * g.OutChannels, s, s);
            Relu.Backward(_act[i].Span, _dAct[i].Span, _dAct[i].Span);
            ReadOnlySpan<float> x = i == 0 ? _input.Span : _pooled[i - 1].Span;
            Span<float> dx = Span<float>.Empty;
            if (i > 0)
            {
                _dPooled[i - 1].EnsureShape(_pooled[i - 1].Shape);
                dx = _dPooled[i - 1].Span;
            }
            Conv2dBatch.Backward(x, _convW[i].Value.Span, _dAct[i].Span, _convW[i].Grad!.Span, _convB[i].Grad!.Span, dx, g, batch, s, s, _workspace);
        }
    }

    /// <summary>Sets every gradient to zero before a backward pass.</summary>
    public void ZeroGrad()
    {
        foreach (var p in Parameters) p.Grad!.Zero();
    }

    /// <summary>Writes the weights with the config (and any extra entries, e.g. the measured accuracy) in the metadata, atomically.</summary>
    public void Save(string path, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var meta = new Dictionary<string, string> { [ConfigMetadataKey] = Config.ToJson() };
        if (metadata is not null) foreach (var (k, v) in metadata) meta[k] = v;
        SafeTensors.Write(path, StateDict.FromParameters(this), meta);
    }

    /// <summary>Reads a classifier written by <see cref="Save"/>; <paramref name="metadata"/> returns the file's metadata.</summary>
    public static ImageClassifier Load(string path, out IReadOnlyDictionary<string, string> metadata)
    {
        var file = SafeTensors.Read(path);
        if (!file.Metadata.TryGetValue(ConfigMetadataKey, out string? json))
            throw new MediatorDiTException($"{path}: is not a classifier file (its safetensors metadata has no '{ConfigMetadataKey}' entry); train one with `mdit train-classifier`.");
        var classifier = new ImageClassifier(ClassifierConfig.FromJson(json, $"{path} (__metadata__ {ConfigMetadataKey})"));
        StateDict.LoadInto(classifier, file.Tensors, strict: true, path);
        metadata = file.Metadata;
        return classifier;
    }

    /// <summary>Reads a classifier written by <see cref="Save"/>.</summary>
    /// <param name="path">The .safetensors file.</param>
    /// <exception cref="MediatorDiTException">The file is unreadable, has no classifier config, or its weights do not match it.</exception>
    public static ImageClassifier Load(string path) => Load(path, out _);
}
