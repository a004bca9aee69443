using System.Globalization;
using System.Text;
using MediatorDiT.Diffusion;
using MediatorDiT.IO;
using MediatorDiT.Models;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;

namespace MediatorDiT.Evaluation;

/// <summary>S for one layer at one network evaluation of the sampling run, averaged over the samples.</summary>
/// <param name="Layer">Block index (0 = the first block).</param>
/// <param name="Step">Sampler step (0-based) the evaluation belongs to.</param>
/// <param name="T">Time of the evaluation (0 = noise, 1 = data on SiT's paths).</param>
/// <param name="S">Mean over samples of the head-averaged mean pairwise JS divergence.</param>
/// <param name="Samples">Samples averaged.</param>
public sealed record RedundancyPoint(int Layer, int Step, double T, double S, int Samples);

/// <summary>Reported after each sampler step: samples finished or in flight, and the step within the current batch.</summary>
public sealed record RedundancyProgress(int SamplesDone, int Samples, int Step, int StepCount);

/// <summary>Settings of a redundancy measurement.</summary>
public sealed record RedundancyOptions
{
    /// <summary>Samples drawn (the values are averaged over them); the paper uses 32.</summary>
    public int Samples { get; init; } = 32;
    /// <summary>Samples per sampler run.</summary>
    public int BatchSize { get; init; } = 16;
    /// <summary>Class labels cycled over the samples; empty: 0, 1, 2, ... modulo the class count.</summary>
    public IReadOnlyList<int> Labels { get; init; } = [];
    /// <summary>Query rows per block of the JS computation (speed only).</summary>
    public int TileRows { get; init; } = AttentionRedundancy.DefaultTileRows;

    /// <summary>Returns these options, or throws a <see cref="MediatorDiTException"/> naming the first impossible value.</summary>
    public RedundancyOptions Validate()
    {
        if (Samples < 1) throw new MediatorDiTException($"--samples must be at least 1, got {Samples}.");
        if (BatchSize < 1) throw new MediatorDiTException($"--batch-size must be at least 1, got {BatchSize}.");
        if (TileRows < 1) throw new MediatorDiTException($"the JS tile must hold at least one row, got {TileRows}.");
        return this;
    }
}

/// <summary>
/// Samples with an existing sampler while measuring, at every network evaluation and in every layer, the
/// attention redundancy S (<see cref="AttentionRedundancy"/>) of the maps the network computes: plain
/// softmax maps for full attention, the composed queries-to-mediators times mediators-to-keys map for
/// mediator attention. Under guidance only the conditional half of the batch is measured. With a ladder,
/// each sample is measured in whichever model serves it. With a device model factory the networks run on its device,
/// which hands each block's attention input back (<see cref="IAttentionInputSource"/>); the maps and S are computed
/// on the host from it, as on the CPU.
/// </summary>
public static class RedundancyAnalysis
{
    /// <summary>
    /// Samples <see cref="RedundancyOptions.Samples"/> images with <paramref name="sampler"/>, the initial noise of
    /// each batch drawn from <paramref name="random"/>, the per-step draws from <paramref name="noise"/> (default:
    /// the same generator, after z), and returns S per layer and step. With <paramref name="deviceModels"/> every network
    /// call runs on that factory's device (e.g. a pipeline's <c>DeviceModels</c>); without, on the CPU.
    /// </summary>
    /// <exception cref="MediatorDiTException">A network cannot show its attention inputs (maps or device function).</exception>
    public static IReadOnlyList<RedundancyPoint> Measure(IReadOnlyList<SiTModel> models, ClassifierFreeGuidance? guidance,
        IModelSchedule? schedule, ISampler sampler, RandomSource random, RedundancyOptions options,
        IProgress<RedundancyProgress>? progress = null, CancellationToken cancellationToken = default, INoiseSource? noise = null,
        IDeviceModelFactory? deviceModels = null)
    {
        ArgumentNullException.ThrowIfNull(models);
        ArgumentNullException.ThrowIfNull(sampler);
        ArgumentNullException.ThrowIfNull(random);
        noise ??= new GaussianNoiseSource(random);
        options.Validate();
        var ladder = ModelLadder.FromModels(models, guidance, deviceModels);
        var config = models[0].Config;
        int[] labels = Enumerable.Range(0, options.Samples)
            .Select(i => options.Labels.Count > 0 ? options.Labels[i % options.Labels.Count] : i % config.NumClasses).ToArray();
        ladder.ValidateLabels(labels);

        var recorder = new Recorder(config.Depth, config.NumTokens, ladder.RowsPerSample, options.TileRows);
        var observed = ladder.WithStages((i, stage) => new ObservedStage(stage, models[i], recorder, deviceModels is not null));
        var tracked = new StepTrackingSchedule(schedule ?? FixedModelSchedule.Only(0), recorder);
        for (int start = 0; start < options.Samples; start += options.BatchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int count = Math.Min(options.BatchSize, options.Samples - start);
            var z = new Tensor(count, config.InChannels, config.InputSize, config.InputSize);
            random.FillGaussian(z.Span);
            var stepProgress = new SyncProgress<SamplingProgress>(p =>
                progress?.Report(new RedundancyProgress(start + count, options.Samples, p.StepsDone, p.StepCount)));
            sampler.Sample(observed, z, labels[start..(start + count)], noise, tracked, progress: stepProgress, cancellationToken: cancellationToken);
        }
        return recorder.Points();
    }

    /// <summary>redundancy.csv: layer,step,t,S (t and S with round-trip precision), one row per layer and evaluation.</summary>
    public static void WriteCsv(string path, IReadOnlyList<RedundancyPoint> points)
    {
        var sb = new StringBuilder("layer,step,t,S\n");
        foreach (var p in points)
            sb.Append(CultureInfo.InvariantCulture, $"{p.Layer},{p.Step},{(float)p.T:R},{p.S:R}\n");
        AtomicFile.Write(path, stream => stream.Write(Encoding.UTF8.GetBytes(sb.ToString())));
    }

    /// <summary>
    /// The evaluations in run order and the layers x evaluations matrix of S (NaN where a layer has no value).
    /// </summary>
    public static (IReadOnlyList<(int Step, double T)> Evaluations, double[,] Values) Matrix(IReadOnlyList<RedundancyPoint> points)
    {
        var evaluations = points.Select(p => (p.Step, p.T)).Distinct().ToList();
        var index = evaluations.Select((e, i) => (e, i)).ToDictionary(x => x.e, x => x.i);
        int layers = points.Count == 0 ? 0 : points.Max(p => p.Layer) + 1;
        var values = new double[layers, evaluations.Count];
        for (int l = 0; l < layers; l++)
        for (int e = 0; e < evaluations.Count; e++)
            values[l, e] = double.NaN;
        foreach (var p in points) values[p.Layer, index[(p.Step, p.T)]] = p.S;
        return (evaluations, values);
    }

    /// <summary>Per-layer curves over the evaluations, and the layers x evaluations heat map.</summary>
    public static (string Curves, string HeatMap) Plots(IReadOnlyList<RedundancyPoint> points, string modelName)
    {
        var (evaluations, values) = Matrix(points);
        bool oneEvaluationPerStep = evaluations.Select(e => e.Step).Distinct().Count() == evaluations.Count;
        string xLabel = oneEvaluationPerStep ? "sampling step" : "network evaluation (in run order)";
        int layers = values.GetLength(0);
        var series = Enumerable.Range(0, layers)
            .Select(l => new PlotSeries($"layer {l}", Enumerable.Range(0, evaluations.Count).Select(e => ((double)e, values[l, e])).ToArray()))
            .ToArray();
        string curves = SvgPlot.LineChart($"attention redundancy per layer, {modelName}", xLabel, "S (mean pairwise JS divergence, nats)", series);
        var columnLabels = evaluations.Select((e, i) => i.ToString(CultureInfo.InvariantCulture)).ToArray();
        string heat = SvgPlot.HeatMap($"attention redundancy S, {modelName}", xLabel, "layer", values, "S (nats)",
            Enumerable.Range(0, layers).Select(l => l.ToString(CultureInfo.InvariantCulture)).ToArray(), columnLabels);
        return (curves, heat);
    }

    /// <summary>Accumulates head-averaged S per (evaluation, layer) over the measured samples.</summary>
    private sealed class Recorder(int layers, int tokens, int rowsPerSample, int tileRows)
    {
        private readonly Dictionary<(int Step, float T), int> _index = [];
        private readonly List<(int Step, float T)> _evaluations = [];
        private readonly List<double[]> _sums = [];
        private readonly List<int[]> _counts = [];
        private int _step = -1, _current = -1;

        public void BeginRun() => _step = -1;

        public void BeginStep() => _step++;

        public void BeginCall(float t)
        {
            var key = (_step, t);
            if (!_index.TryGetValue(key, out _current))
            {
                _current = _evaluations.Count;
                _index[key] = _current;
                _evaluations.Add(key);
                _sums.Add(new double[layers]);
                _counts.Add(new int[layers]);
            }
        }

        public void Record(int layer, IAttentionMaps attention, Tensor input, int batch)
        {
            int images = batch / rowsPerSample; // under guidance: the conditional half
            var values = LayerRedundancy.PerImage(attention, input, images, tokens, tileRows);
            foreach (double v in values) _sums[_current][layer] += v;
            _counts[_current][layer] += images;
        }

        public IReadOnlyList<RedundancyPoint> Points()
        {
            var points = new List<RedundancyPoint>();
            for (int e = 0; e < _evaluations.Count; e++)
            for (int l = 0; l < layers; l++)
                if (_counts[e][l] > 0)
                    points.Add(new RedundancyPoint(l, _evaluations[e].Step, _evaluations[e].T, _sums[e][l] / _counts[e][l], _counts[e][l]));
            return points;
        }
    }

    /// <summary>
    /// A ladder stage whose network calls are measured: a CPU stage through its model's blocks, a device stage through
    /// the attention inputs it downloads; the maps come from the CPU model's attention either way.
    /// </summary>
    private sealed class ObservedStage : IModelFunction
    {
        private readonly IModelFunction _inner;
        private readonly SiTModel _model;
        private readonly Recorder _recorder;
        private readonly IAttentionMaps[] _maps;
        private readonly Action<int, Tensor, int> _record; // (layer, attention input (B*N, D), batch B), made once

        public ObservedStage(IModelFunction inner, SiTModel model, Recorder recorder, bool onDevice)
        {
            (_inner, _model, _recorder) = (inner, model, recorder);
            _maps = model.Blocks.Select((b, i) => b.Attention as IAttentionMaps
                ?? throw new MediatorDiTException($"block {i}'s {b.Attention.Kind} attention cannot give its attention maps.")).ToArray();
            if (onDevice && inner is not IAttentionInputSource)
                throw new MediatorDiTException("the device's network functions cannot show their attention inputs, so redundancy cannot be measured there; use the cpu.");
            _record = (layer, input, batch) => _recorder.Record(layer, _maps[layer], input, batch);
        }

        public int RowsPerSample => _inner.RowsPerSample;

        public Tensor Evaluate(Tensor x, ReadOnlySpan<float> t, ReadOnlySpan<int> y)
        {
            _recorder.BeginCall(t[0]);
            using var observer = _inner is IAttentionInputSource source ? source.ObserveAttentionInputs(_record) : AttentionObserver.Attach(_model, _record);
            return _inner.Evaluate(x, t, y);
        }
    }

    /// <summary>Passes the schedule's decisions through and tells the recorder where each step begins.</summary>
    private sealed class StepTrackingSchedule(IModelSchedule inner, Recorder recorder) : IModelSchedule
    {
        public IModelScheduleRun Start(ScheduleContext context)
        {
            recorder.BeginRun();
            return new Run(inner.Start(context) ?? throw new MediatorDiTException("the model schedule returned no run state."), recorder);
        }

        private sealed class Run(IModelScheduleRun inner, Recorder recorder) : IModelScheduleRun
        {
            // The sampler asks for every sample's model, sample 0 first, once at the start of each step.
            public int ModelOf(int sample)
            {
                if (sample == 0) recorder.BeginStep();
                return inner.ModelOf(sample);
            }

            public void Observe(StepObservation observation) => inner.Observe(observation);
        }
    }
}
