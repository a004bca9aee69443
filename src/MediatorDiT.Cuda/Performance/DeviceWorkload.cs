using ILGPU.Runtime;
using MediatorDiT.Cuda.Models;
using MediatorDiT.Cuda.Sampling;
using MediatorDiT.Cuda.Training;
using MediatorDiT.Diffusion;
using MediatorDiT.Models;
using MediatorDiT.Nn;
using MediatorDiT.Tensors;
using MediatorDiT.Training;

namespace MediatorDiT.Cuda.Performance;

/// <summary>
/// A model with random N(0, 0.02) weights and random inputs on an accelerator, ready to time (the device twin of the
/// CPU bench's workload): <see cref="Forward"/> through <see cref="DeviceModelFunction"/> and <see cref="TrainStep"/>
/// (forward keeping activations, loss, backward, gradient norm, AdamW, EMA) through <see cref="DeviceTrainingBackend"/>,
/// each built at its first call. FLOPs are <see cref="FlopCounter"/>'s multiply-accumulates x 2 per image; a training
/// step counts three forwards (backward = 2 x forward). Speed does not depend on the weights' values.
/// </summary>
public sealed class DeviceWorkload : IDisposable
{
    private readonly Accelerator _accelerator;
    private readonly int _trainingBatches;
    private readonly Tensor _x;
    private readonly float[] _t;
    private readonly int[] _y;
    private DeviceModelFunction? _forward;
    private Kernels.KernelSet? _forwardKernels;
    private DeviceTrainingBackend? _training;
    private TrainingBatch[]? _batches;
    private readonly List<Blas.RecordingGemm> _recorders = [];

    /// <summary>A workload of <paramref name="batch"/> images of <paramref name="config"/>'s model on <paramref name="accelerator"/>.</summary>
    /// <param name="accelerator">Where it runs; it stays the caller's.</param>
    /// <param name="config">The model.</param>
    /// <param name="batch">Images per call.</param>
    /// <param name="precision">The linear layers' matrix products.</param>
    /// <param name="trainingBatches">Distinct training batches, used in turn by <see cref="TrainStep"/>'s call index (drawn before any step).</param>
    public DeviceWorkload(Accelerator accelerator, ModelConfig config, int batch, DevicePrecision precision, int trainingBatches = 1)
    {
        ArgumentNullException.ThrowIfNull(accelerator);
        ArgumentNullException.ThrowIfNull(config);
        ArgumentOutOfRangeException.ThrowIfLessThan(batch, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(trainingBatches, 1);
        _accelerator = accelerator;
        _trainingBatches = trainingBatches;
        Config = config;
        Batch = batch;
        Precision = precision;
        _x = new Tensor(batch, config.InChannels, config.InputSize, config.InputSize);
        new RandomSource(3).FillGaussian(_x.Span);
        _t = Enumerable.Range(0, batch).Select(i => (i + 0.5f) / batch).ToArray();
        _y = Enumerable.Range(0, batch).Select(i => i % config.NumClasses).ToArray();
        ForwardFlops = 2 * FlopCounter.Count(config).PerImage * batch;
    }

    /// <summary>The model timed.</summary>
    public ModelConfig Config { get; }

    /// <summary>
    /// Whether the training step's bf16 operands are written by the kernels that produce them (the default) or
    /// rounded in passes of their own, the reference with the same bits (the device check times both).
    /// </summary>
    internal bool OperandsFromProducers { get; init; } = true;

    /// <summary>
    /// How full attention's core runs (<see cref="FullAttentionCore"/>: the tiles, the library's default, or the
    /// fused tensor-core kernels, a training step then keeping no P); the device check and the bench time both. Fused
    /// is refused at the first call where its kernels cannot run.
    /// </summary>
    public FullAttentionCore FullAttention { get; init; }

    /// <summary>
    /// Whether the device's products go through a <see cref="Blas.RecordingGemm"/>, so that <see cref="RecordProducts"/>
    /// can give a call's product mix (the device check replays it shape by shape).
    /// </summary>
    internal bool RecordsProducts { get; init; }

    /// <summary>Full attention's core of the forward or training network built so far (the forward's first), null before either.</summary>
    internal Models.AttentionProducts? Attention => _forward?.Attention ?? _training?.Attention;

    /// <summary>Images per call.</summary>
    public int Batch { get; }

    /// <summary>The matrix products' number format.</summary>
    public DevicePrecision Precision { get; }

    /// <summary>FLOPs of one forward of the batch.</summary>
    public double ForwardFlops { get; }

    /// <summary>FLOPs of one training step of the batch: three forwards.</summary>
    public double TrainFlops => 3 * ForwardFlops;

    /// <summary>One forward of the batch (weights uploaded at the first call); the prediction on the host.</summary>
    public Tensor Forward()
    {
        if (_forward is null)
        {
            var model = new SiTModel(Config);
            Randomise(model.Parameters);
            _forwardKernels = new Kernels.KernelSet(_accelerator);
            CheckFullAttention();
            _forward = new DeviceModelFunction(model, _forwardKernels, Gemm(), guidance: null, Precision, fullAttention: FullAttention);
        }
        return _forward.Evaluate(_x, _t, _y);
    }

    /// <summary>
    /// One <see cref="Forward"/> with <paramref name="profile"/> attributing its time by stage (the profile is
    /// restarted first and stopped after); run an unprofiled one first, so compiling and allocating stay out of it.
    /// </summary>
    public void ProfileForward(DeviceStageProfile profile) => Profiled(profile, () => _forwardKernels, () => Forward());

    /// <summary>One <see cref="TrainStep"/> on training batch <paramref name="call"/> with <paramref name="profile"/> attributing its time by stage.</summary>
    public void ProfileTrainStep(DeviceStageProfile profile, int call = 0) => Profiled(profile, () => _training?.Kernels, () => TrainStep(call));

    private static void Profiled(DeviceStageProfile profile, Func<Kernels.KernelSet?> kernels, Action run)
    {
        ArgumentNullException.ThrowIfNull(profile);
        var set = kernels() ?? throw new InvalidOperationException("run the workload once before profiling it.");
        set.Profile = profile;
        try
        {
            profile.Start();
            run();
            profile.Stop();
        }
        finally
        {
            set.Profile = null;
        }
    }

    /// <summary>One training step on training batch <paramref name="call"/> mod the batches drawn; its loss and gradient norm.</summary>
    public TrainingStepResult TrainStep(int call = 0)
    {
        if (_training is null)
        {
            // The config's own attention: its one mediator count, or none for full attention.
            int[] mediators = Config.Attention == AttentionKind.Mediator ? [Config.MediatorNum] : [];
            var net = TrainableNetwork.Create(Config, mediators);
            var ema = TrainableNetwork.Create(Config, mediators);
            Randomise(net.Parameters);
            Ema.CopyWeights(net, ema);
            _batches = Enumerable.Range(0, _trainingBatches).Select(i => RandomBatch(Config, Batch, 200 + i)).ToArray();
            CheckFullAttention();
            _training = new DeviceTrainingBackend(_accelerator, new Transport(), Precision, null, null, OperandsFromProducers, Gemm(), FullAttention);
            _training.Attach(net, ema, new AdamW(net.Parameters, 1e-4));
        }
        return _training.Step(_batches![call % _batches.Length]);
    }

    /// <summary>
    /// The distinct products (shape, precision, calls) that <paramref name="run"/> (a <see cref="Forward"/> or
    /// <see cref="TrainStep"/> of this workload, built before) queues; needs <see cref="RecordsProducts"/>.
    /// </summary>
    internal IReadOnlyList<Blas.RecordedProduct> RecordProducts(Action run)
    {
        ArgumentNullException.ThrowIfNull(run);
        if (!RecordsProducts) throw new InvalidOperationException("the workload does not record its products (RecordsProducts).");
        if (_recorders.Count == 0) throw new InvalidOperationException("run the workload once before recording its products.");
        foreach (var recorder in _recorders)
        {
            recorder.Clear();
            recorder.Recording = true;
        }
        try
        {
            run();
        }
        finally
        {
            foreach (var recorder in _recorders) recorder.Recording = false;
        }
        // The networks (forward, training) record apart; one list, in first-call order.
        return _recorders.SelectMany(r => r.Products)
            .GroupBy(p => (p.Shape, p.Precision))
            .Select(g => g.First() with { Calls = g.Sum(p => p.Calls) })
            .ToArray();
    }

    /// <summary>
    /// Refuses a fused core that cannot run here or take the model's heads before <see cref="Gemm"/> adds a recorder
    /// and before a training backend is kept half built (its <c>Attach</c> would refuse the model only after).
    /// </summary>
    private void CheckFullAttention()
    {
        FullAttention.Check(_accelerator, Precision);
        FullAttention.Check(Config);
    }

    /// <summary>The device's products for a network about to be built, through a recorder of its own when asked.</summary>
    private Blas.IDeviceGemm Gemm()
    {
        var gemm = Blas.DeviceGemms.For(_accelerator);
        if (!RecordsProducts) return gemm;
        var recorder = new Blas.RecordingGemm(gemm);
        _recorders.Add(recorder);
        return recorder;
    }

    /// <summary>Every trainable parameter N(0, 0.02), one seeded stream per parameter, in parallel (SiT-XL/2 has 675M values).</summary>
    public static void Randomise(IReadOnlyList<Parameter> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        Parallel.For(0, parameters.Count, i =>
        {
            if (parameters[i].Trainable) new RandomSource((ulong)(1000 + i)).FillGaussian(parameters[i].Value.Span, 0, 0.02f);
        });
    }

    /// <summary>
    /// A training batch of <paramref name="size"/> from <paramref name="seed"/>: standard normal noise and data, labels
    /// (the null label included) and times in [0.05, 0.95); member 0, one part, no clipping, learning rate 1e-3, EMA 0.9.
    /// </summary>
    public static TrainingBatch RandomBatch(ModelConfig config, int size, int seed)
    {
        ArgumentNullException.ThrowIfNull(config);
        var random = new RandomSource((ulong)seed);
        Tensor Normal()
        {
            var t = new Tensor(size, config.InChannels, config.InputSize, config.InputSize);
            random.FillGaussian(t.Span, 0, 1f);
            return t;
        }
        var labels = new int[size];
        var times = new float[size];
        var draw = new Random(seed);
        for (int i = 0; i < size; i++)
        {
            labels[i] = draw.Next(config.NumClasses + 1);
            times[i] = 0.05f + 0.9f * draw.NextSingle();
        }
        return new TrainingBatch(0, labels, Normal(), times, Normal(), Normal(), 1, 0, 1e-3, 0.9);
    }

    /// <summary>Frees the device network and training state.</summary>
    public void Dispose()
    {
        _forward?.Dispose();
        _training?.Dispose();
    }
}
