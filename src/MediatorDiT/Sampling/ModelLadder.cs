using MediatorDiT.Models;
using MediatorDiT.Tensors;

namespace MediatorDiT.Sampling;

/// <summary>
/// The models a sampler may switch between, ordered from cheapest to dearest (for step-wise dynamic
/// mediators: the same network size with increasing mediator counts), each wrapped as an
/// <see cref="IModelFunction"/>, with its per-image cost. A ladder of one model is plain sampling.
/// Which stage serves which sample at each step is decided by an <see cref="IModelSchedule"/>.
/// </summary>
public sealed class ModelLadder
{
    private readonly IModelFunction[] _stages;
    private readonly double[] _flopsPerImage;
    private readonly int[] _sampleShape;
    private readonly IModelFunction? _diffusionNetwork;

    /// <summary>The stage functions, index 0 first.</summary>
    public IReadOnlyList<IModelFunction> Stages => _stages;

    /// <summary>
    /// FLOPs (multiply-accumulates, <see cref="FlopCounter"/>) that one evaluation of each stage spends per
    /// sample, guidance's doubled batch included.
    /// </summary>
    public IReadOnlyList<double> FlopsPerImage => _flopsPerImage;

    /// <summary>The number of models (stages) in the ladder.</summary>
    public int Count => _stages.Length;

    /// <summary>Number of classes; label <see cref="NumClasses"/> itself is the null (unconditional) label.</summary>
    public int NumClasses { get; }

    /// <summary>Shape of one sample, (C, H, W).</summary>
    public IReadOnlyList<int> SampleShape => _sampleShape;

    /// <summary>1, or 2 under guidance (see <see cref="IModelFunction.RowsPerSample"/>).</summary>
    public int RowsPerSample { get; }

    /// <summary>The model configs when the ladder was built from models, else null.</summary>
    public IReadOnlyList<ModelConfig>? Configs { get; }

    /// <summary>The networks when the ladder was built from models, else null.</summary>
    public IReadOnlyList<SiTModel>? Models { get; }

    /// <summary>The guidance every stage runs under, when the ladder was built from models with guidance.</summary>
    public ClassifierFreeGuidance? Guidance { get; }

    /// <summary>
    /// A ladder of arbitrary functions. All must share <see cref="IModelFunction.RowsPerSample"/>;
    /// <paramref name="flopsPerImage"/> gives each stage's cost per sample and evaluation (0 if unknown).
    /// </summary>
    public ModelLadder(IReadOnlyList<IModelFunction> stages, IReadOnlyList<double> flopsPerImage, int numClasses, IReadOnlyList<int> sampleShape)
        : this(stages, flopsPerImage, numClasses, sampleShape, null, null, null, null)
    {
    }

    private ModelLadder(IReadOnlyList<IModelFunction> stages, IReadOnlyList<double> flopsPerImage, int numClasses,
        IReadOnlyList<int> sampleShape, IReadOnlyList<ModelConfig>? configs, IReadOnlyList<SiTModel>? models, ClassifierFreeGuidance? guidance,
        IModelFunction? diffusionNetwork)
    {
        ArgumentNullException.ThrowIfNull(stages);
        ArgumentNullException.ThrowIfNull(flopsPerImage);
        ArgumentNullException.ThrowIfNull(sampleShape);
        if (stages.Count == 0) throw new MediatorDiTException("a model ladder needs at least one model, got none.");
        if (flopsPerImage.Count != stages.Count)
            throw new MediatorDiTException($"the ladder has {stages.Count} models but {flopsPerImage.Count} FLOP counts; give one per model.");
        for (int i = 0; i < stages.Count; i++)
        {
            if (stages[i] is null) throw new MediatorDiTException($"ladder model {i + 1} is null.");
            if (!(flopsPerImage[i] >= 0) || double.IsInfinity(flopsPerImage[i]))
                throw new MediatorDiTException($"ladder model {i + 1} has FLOPs per image {flopsPerImage[i]}; expected a finite number >= 0.");
        }
        int rows = stages[0].RowsPerSample;
        if (rows is not (1 or 2))
            throw new MediatorDiTException($"ladder model 1 reports {rows} rows per sample; expected 1 (plain) or 2 (guided).");
        for (int i = 1; i < stages.Count; i++)
            if (stages[i].RowsPerSample != rows)
                throw new MediatorDiTException(
                    $"ladder model {i + 1} uses {stages[i].RowsPerSample} rows per sample but model 1 uses {rows}; guide all models of a ladder or none.");
        if (numClasses <= 0) throw new MediatorDiTException($"the ladder's class count must be positive, got {numClasses}.");
        if (sampleShape.Count != 3 || sampleShape.Any(d => d <= 0))
            throw new MediatorDiTException($"the ladder's sample shape must be (C, H, W) with positive sizes, got ({string.Join(", ", sampleShape)}).");
        _stages = stages.ToArray();
        _flopsPerImage = flopsPerImage.ToArray();
        _sampleShape = sampleShape.ToArray();
        NumClasses = numClasses;
        RowsPerSample = rows;
        Configs = configs?.ToArray();
        Models = models?.ToArray();
        Guidance = guidance;
        _diffusionNetwork = diffusionNetwork;
    }

    /// <summary>
    /// The DiT network on a device, as <see cref="DiffusionSampler"/> calls it (its full 2C-channel output, guided as
    /// forward_with_cfg), when the ladder was built with a device model factory; null: the sampler runs the CPU model.
    /// </summary>
    internal IModelFunction? DiffusionNetwork => _diffusionNetwork;

    /// <summary>A ladder of one network (on the device of <paramref name="deviceModels"/> when given).</summary>
    public static ModelLadder FromModel(SiTModel model, ClassifierFreeGuidance? guidance = null, IDeviceModelFactory? deviceModels = null) =>
        FromModels([model], guidance, deviceModels);

    /// <summary>
    /// A ladder of networks that agree in everything but their mediator count, which must increase
    /// along the ladder. Guidance (scale above 1) wraps every model as the official forward_with_cfg and
    /// doubles its cost per image. A DiT model (2C output channels) makes a ladder of one that only
    /// <see cref="DiffusionSampler"/> samples. With <paramref name="deviceModels"/> every model is evaluated on that
    /// factory's device (each stage its own device function, switched between as CPU ones); without, on the CPU.
    /// </summary>
    public static ModelLadder FromModels(IReadOnlyList<SiTModel> models, ClassifierFreeGuidance? guidance = null,
        IDeviceModelFactory? deviceModels = null)
    {
        ArgumentNullException.ThrowIfNull(models);
        if (models.Count == 0) throw new MediatorDiTException("a model ladder needs at least one model, got none.");
        for (int i = 0; i < models.Count; i++)
            if (models[i] is null) throw new MediatorDiTException($"ladder model {i + 1} is null.");
        var configs = models.Select(m => m.Config).ToArray();
        CheckSameSize(configs);
        bool guided = guidance is { IsActive: true };
        bool dit = configs[0].Family == ModelFamily.DiT;
        if (dit && models.Count > 1)
            throw new MediatorDiTException("a mediator ladder is sampled with SiT's transport; a DiT checkpoint is sampled alone with DiT's diffusion.");
        if (guided) guidance!.ChannelsFor(configs[0].InChannels); // refuses more guided channels than the models have
        var active = guided ? guidance : null;
        var stages = models.Select(m => dit ? new DiffusionOnlyFunction(guided ? 2 : 1)
            : deviceModels is not null ? deviceModels.Create(m, active)
            : guided ? (IModelFunction)new GuidedNetworkFunction(m, guidance!) : new NetworkFunction(m)).ToArray();
        var diffusionNetwork = dit && deviceModels is not null ? deviceModels.Create(models[0], active) : null;
        var flops = configs.Select(c => FlopCounter.Count(c).PerImage * (guided ? 2 : 1)).ToArray();
        var first = configs[0];
        return new ModelLadder(stages, flops, first.NumClasses, [first.InChannels, first.InputSize, first.InputSize], configs,
            models, active, diffusionNetwork);
    }

    /// <summary>
    /// The same ladder with every stage replaced by <paramref name="wrap"/>(index, stage), e.g. to count or
    /// time calls; costs, classes and shapes are kept.
    /// </summary>
    public ModelLadder WithStages(Func<int, IModelFunction, IModelFunction> wrap)
    {
        ArgumentNullException.ThrowIfNull(wrap);
        var stages = _stages.Select((s, i) => wrap(i, s)).ToArray();
        return new ModelLadder(stages, _flopsPerImage, NumClasses, _sampleShape, Configs, Models, Guidance, _diffusionNetwork);
    }

    /// <summary>Throws unless every label is a class index in [0, num_classes) or the null label num_classes.</summary>
    public void ValidateLabels(ReadOnlySpan<int> y)
    {
        for (int i = 0; i < y.Length; i++)
            if (y[i] < 0 || y[i] > NumClasses)
                throw new MediatorDiTException(
                    $"class label {y[i]} (sample {i}) is out of range; expected 0..{NumClasses - 1}, or {NumClasses} for the null label.");
    }

    /// <summary>Throws unless z is (B, C, H, W) with this ladder's sample shape and B = <paramref name="labels"/>.</summary>
    public void ValidateInitialNoise(Tensor z, int labels)
    {
        ArgumentNullException.ThrowIfNull(z);
        if (z.Rank != 4 || z.Dim(1) != _sampleShape[0] || z.Dim(2) != _sampleShape[1] || z.Dim(3) != _sampleShape[2])
            throw new MediatorDiTException(
                $"the initial noise z has shape [{z.ShapeString}] but the models expect [B, {_sampleShape[0]}, {_sampleShape[1]}, {_sampleShape[2]}].");
        if (z.Dim(0) == 0) throw new MediatorDiTException("the initial noise z holds no samples; give at least one.");
        if (z.Dim(0) != labels)
            throw new MediatorDiTException($"the initial noise z has {z.Dim(0)} samples but {labels} labels were given; give one label per sample.");
    }

    /// <summary>
    /// Evaluates the batch x (rows = samples x <see cref="RowsPerSample"/>), sample s by stage
    /// modelOfSample[s]. Samples sharing a stage run as one call (rows kept in the guidance layout); a
    /// batch served by one stage is a single call without copies.
    /// </summary>
    public Tensor Evaluate(Tensor x, ReadOnlySpan<float> t, ReadOnlySpan<int> y, ReadOnlySpan<int> modelOfSample)
    {
        ArgumentNullException.ThrowIfNull(x);
        int samples = modelOfSample.Length, rows = samples * RowsPerSample;
        if (samples == 0 || x.Rank < 1 || x.Dim(0) != rows || t.Length != rows || y.Length != rows)
            throw new MediatorDiTException(
                $"the ladder got {x.Dim(0)} state rows, {t.Length} times and {y.Length} labels for {samples} samples x {RowsPerSample} rows; they must agree.");
        foreach (int m in modelOfSample)
            if (m < 0 || m >= Count) throw new MediatorDiTException($"model index {m} is outside the ladder of {Count} models.");

        int first = modelOfSample[0];
        if (!modelOfSample.ContainsAnyExcept(first)) return CheckedCall(first, x, t, y);

        var output = new Tensor(x.Shape);
        int per = x.Length / rows;
        var members = new List<int>(samples);
        for (int m = 0; m < Count; m++)
        {
            members.Clear();
            for (int s = 0; s < samples; s++)
                if (modelOfSample[s] == m) members.Add(s);
            if (members.Count == 0) continue;
            int n = members.Count, subRows = n * RowsPerSample;
            var shape = (int[])x.Shape.Clone();
            shape[0] = subRows;
            var subX = new Tensor(shape);
            var subT = new float[subRows];
            var subY = new int[subRows];
            for (int copy = 0; copy < RowsPerSample; copy++)
            for (int i = 0; i < n; i++)
            {
                int row = members[i] + copy * samples, subRow = i + copy * n;
                x.Span.Slice(row * per, per).CopyTo(subX.Span.Slice(subRow * per, per));
                subT[subRow] = t[row];
                subY[subRow] = y[row];
            }
            var subOut = CheckedCall(m, subX, subT, subY);
            for (int copy = 0; copy < RowsPerSample; copy++)
            for (int i = 0; i < n; i++)
            {
                int row = members[i] + copy * samples, subRow = i + copy * n;
                subOut.Span.Slice(subRow * per, per).CopyTo(output.Span.Slice(row * per, per));
            }
        }
        return output;
    }

    private Tensor CheckedCall(int stage, Tensor x, ReadOnlySpan<float> t, ReadOnlySpan<int> y)
    {
        var result = _stages[stage].Evaluate(x, t, y);
        if (result is null || !result.SameShape(x))
            throw new MediatorDiTException(
                $"ladder model {stage + 1} returned [{result?.ShapeString}] for a state of [{x.ShapeString}]; a sampler needs a prediction shaped like the state.");
        return result;
    }

    private static readonly (string Name, Func<ModelConfig, object> Get)[] SizeFields =
    [
        ("input_size", c => c.InputSize), ("patch_size", c => c.PatchSize), ("in_channels", c => c.InChannels),
        ("hidden_size", c => c.HiddenSize), ("depth", c => c.Depth), ("num_heads", c => c.NumHeads),
        ("mlp_ratio", c => c.MlpRatio), ("num_classes", c => c.NumClasses), ("learn_sigma", c => c.LearnSigma),
        ("class_dropout_prob", c => c.ClassDropoutProb), ("attention", c => c.Attention), ("family", c => c.Family),
    ];

    private static void CheckSameSize(IReadOnlyList<ModelConfig> configs)
    {
        var first = configs[0];
        for (int i = 1; i < configs.Count; i++)
        {
            foreach (var (name, get) in SizeFields)
            {
                object a = get(first), b = get(configs[i]);
                if (!a.Equals(b))
                    throw new MediatorDiTException(
                        $"ladder model {i + 1} has {name} {b} but model 1 has {a}; the models of a ladder may differ only in mediator_num.");
            }
        }
        if (configs.Count == 1) return;
        if (!AttentionKinds.For(first).UsesMediatorCount)
            throw new MediatorDiTException(
                $"a ladder of {configs.Count} models switches between mediator counts, but its models use {first.Attention} attention; use mediator attention.");
        for (int i = 1; i < configs.Count; i++)
            if (configs[i].MediatorNum <= configs[i - 1].MediatorNum)
                throw new MediatorDiTException(
                    $"ladder model {i + 1} has mediator_num {configs[i].MediatorNum}, not more than model {i}'s {configs[i - 1].MediatorNum}; order the ladder by increasing mediator count.");
    }

    /// <summary>The stage of a DiT model: its 2C-channel output is read by DiT's diffusion, not by SiT's transport samplers.</summary>
    private sealed class DiffusionOnlyFunction(int rowsPerSample) : IModelFunction
    {
        public int RowsPerSample => rowsPerSample;

        public Tensor Evaluate(Tensor x, ReadOnlySpan<float> t, ReadOnlySpan<int> y) => throw new MediatorDiTException(
            "a DiT model predicts noise and variance for DiT's Gaussian diffusion; sample it with DiffusionSampler (ancestral or DDIM), not SiT's SDE or ODE.");
    }
}
