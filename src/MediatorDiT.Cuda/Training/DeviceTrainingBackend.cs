using ILGPU;
using ILGPU.Runtime;
using MediatorDiT.Cuda.Blas;
using MediatorDiT.Cuda.Distributed;
using MediatorDiT.Cuda.Kernels;
using MediatorDiT.Cuda.Models;
using MediatorDiT.Diffusion;
using MediatorDiT.Models;
using MediatorDiT.Nn;
using MediatorDiT.Tensors;
using MediatorDiT.Training;
using MediatorDiT.Training.Distributed;

namespace MediatorDiT.Cuda.Training;

/// <summary>
/// The training backend on an ILGPU accelerator: parameters, gradients, AdamW's moments and the EMA live on the device
/// (<see cref="DeviceTrainingState"/>) and the whole step runs there: per part of the batch the forward keeping every
/// block's activations, the transport's loss and its gradient, the backward; the parts' gradients summed in part
/// order, as <see cref="CpuTrainingBackend"/> sums them; the fp32 gradient norm and clipping; AdamW with the CPU
/// optimiser's scalars for the parameters the step's member used; the EMA. A shared-weight ladder's member uses its
/// own position biases, rebuilt on the host from their current values each step (a few KB per block). The host
/// objects are brought up to date by <see cref="SyncToHost"/>, so checkpoints are the CPU run's files.
/// The linear layers' matrix products (forward and backward) run at the backend's <see cref="Precision"/>: fp32, or
/// bf16 inputs with fp32 accumulation, reading bf16 copies of the fp32 master weights that are rounded again after
/// every optimiser step; the loss, norms, softmax, AdamW and the EMA are fp32 either way.
/// Data-parallel runs (one device per rank) sum the ranks' part gradients in part order, through the host or, with a
/// <see cref="DeviceExchange"/>, on the devices bucket by bucket during the backward pass; either way the weights are
/// one process's bit for bit.
/// </summary>
public sealed class DeviceTrainingBackend : ITrainingBackend
{
    private readonly Transport _transport;
    private readonly KernelSet _kernels;
    private readonly IDeviceGemm _gemm;
    private readonly LinearProducts _products;
    private DeviceTrainingState? _state;
    private DeviceModel[] _members = [];
    private TrainableNetwork? _network, _ema;
    private AdamW? _optimizer;
    // Per member: runs of neighbouring trainable parameters (indices into the state) AdamW updates in one launch when their step counts agree.
    private (int First, int Last)[][] _runs = [];
    private float[] _losses = [], _norm = new float[1];
    private readonly ICommunicator _comm;
    private float[] _local = [], _sum = [];
    private double[] _partLosses = [], _rankLosses = [];
    private readonly DeviceExchange? _exchange;
    private readonly DeviceChainSum? _chain;
    // Per member, per backward stage (DeviceModel.Backward's numbering): the gradient buckets final after it, in release order.
    private int[][][] _schedule = [];
    // Ranks after the first keep the parts before the step's last until the running sum reaches them: (parts - 1, parameters).
    private MemoryBuffer1D<float, Stride1D.Dense>? _stored;
    private ArrayView<float>[] _parts = [];

    /// <summary>A backend computing on <paramref name="accelerator"/> (a CUDA device, or ILGPU's CPU accelerator), training <paramref name="transport"/>'s loss.</summary>
    /// <param name="accelerator">The device; the caller keeps and disposes it.</param>
    /// <param name="transport">The transport whose loss is trained.</param>
    /// <param name="precision">The matrix products' precision (fp32 unless asked; the CLI's default on a GPU is bf16).</param>
    /// <param name="communicator">
    /// The ranks sharing each batch (one device each); null: this process alone. Each rank's part gradients are
    /// downloaded and summed in part order over all ranks on the host (<see cref="ICommunicator.SumInOrder"/>), then
    /// uploaded: the same additions in the same order as one process, so any number of ranks gives the same weights.
    /// </param>
    /// <param name="exchange">
    /// With several ranks: sum the part gradients on the devices over this transport instead (<see cref="DeviceChainSum"/>,
    /// the same additions in the same order); null: through the host. Ignored for one rank.
    /// </param>
    /// <param name="fullAttention">
    /// How full attention's core runs (<see cref="FullAttentionCore"/>; mediator attention ignores it): fused, a step keeps no P.
    /// </param>
    /// <exception cref="MediatorDiTException">The fused full-attention core was asked for and cannot run here.</exception>
    public DeviceTrainingBackend(Accelerator accelerator, Transport transport, DevicePrecision precision = DevicePrecision.Fp32,
        ICommunicator? communicator = null, DeviceExchange? exchange = null, FullAttentionCore fullAttention = FullAttentionCore.Tiles)
        : this(accelerator, transport, precision, communicator, exchange, operandsFromProducers: true, fullAttention: fullAttention)
    {
    }

    /// <summary>
    /// As the public constructor; <paramref name="operandsFromProducers"/> false rounds every bf16 product's operands
    /// in passes of their own (LinearProducts.OperandsFromProducers), the same bits: the reference the tests hold the
    /// default to. <paramref name="gemm"/> (owned by the backend from here on) replaces the device's own products
    /// (DeviceGemms.For), e.g. by a <see cref="RecordingGemm"/> around them.
    /// </summary>
    internal DeviceTrainingBackend(Accelerator accelerator, Transport transport, DevicePrecision precision, ICommunicator? communicator,
        DeviceExchange? exchange, bool operandsFromProducers, IDeviceGemm? gemm = null, FullAttentionCore fullAttention = FullAttentionCore.Tiles)
    {
        try
        {
            ArgumentNullException.ThrowIfNull(accelerator);
            ArgumentNullException.ThrowIfNull(transport);
            fullAttention.Check(accelerator, precision);
        }
        catch
        {
            gemm?.Dispose(); // the caller's GEMM is the backend's from here on, also when refused
            throw;
        }
        FullAttention = fullAttention;
        _comm = communicator ?? SingleProcessCommunicator.Instance;
        _transport = transport;
        _kernels = new KernelSet(accelerator);
        _gemm = gemm ?? DeviceGemms.For(accelerator);
        _products = new LinearProducts(_kernels, _gemm, precision, operandsFromProducers);
        fullAttention.ApplyTo(_products.Attention); // before the first step allocates what it keeps
        if (exchange is not null && _comm.Size > 1)
        {
            exchange.Check(_comm.Rank, _comm.Size);
            _exchange = exchange;
            _chain = new DeviceChainSum(_kernels.Accelerator, exchange.Transport);
        }
        Name = _comm.Size == 1 ? accelerator.Name
            : $"{accelerator.Name}, {_comm.Size} ranks over {_comm.Name}" + (_exchange is null ? "" : $", gradients summed over {_exchange.Transport.Name}");
    }

    /// <summary>The number format of the matrix products' inputs.</summary>
    public DevicePrecision Precision => _products.Precision;

    /// <summary>How full attention's core runs (mediator attention ignores it).</summary>
    public FullAttentionCore FullAttention { get; }

    /// <inheritdoc/>
    public string Name { get; }

    /// <summary>The kernels the step runs (their <see cref="KernelSet.Profile"/> attributes its time).</summary>
    internal KernelSet Kernels => _kernels;

    /// <summary>Full attention's core as products (its tile size may be changed between steps).</summary>
    internal AttentionProducts Attention => _products.Attention;

    /// <summary>The device state after <see cref="Attach"/> (tests read the last step's gradients from it); null before.</summary>
    internal DeviceTrainingState? State => _state;

    /// <inheritdoc/>
    public void Attach(TrainableNetwork network, TrainableNetwork ema, AdamW optimizer)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(ema);
        ArgumentNullException.ThrowIfNull(optimizer);
        foreach (var member in network.Members) FullAttention.Check(member.Config);
        DisposeState();
        var state = new DeviceTrainingState(_kernels.Accelerator, network);
        _state = state;
        state.Load(ema, optimizer);
        var accelerator = _kernels.Accelerator;
        // bf16: one copy of the whole flat value buffer serves every member's weights (they are views into it).
        _products.KeepBf16Copies([state.Values]);
        _members = network.Members.Select(member => new DeviceModel(member, _kernels, _products,
            new DeviceWeights(member, accelerator, p => state.Slice(state.Values, state.IndexOf(p)), buildBiases: true),
            new DeviceWeights(member, accelerator, p => state.Slice(state.Gradients, state.IndexOf(p)), buildBiases: false))).ToArray();
        _runs = network.Members.Select(member => Runs(state, member.Parameters)).ToArray();
        if (_exchange is not null) _schedule = network.Members.Select(member => Schedule(state, member, _exchange.BucketFloats)).ToArray();
        (_network, _ema, _optimizer) = (network, ema, optimizer);
    }

    /// <summary>The member's trainable parameters as runs of neighbours in the state's layout.</summary>
    private static (int First, int Last)[] Runs(DeviceTrainingState state, IReadOnlyList<Parameter> parameters)
    {
        var indices = parameters.Where(p => p.Trainable).Select(state.IndexOf).Distinct().Order().ToArray();
        var runs = new List<(int, int)>();
        for (int i = 0; i < indices.Length;)
        {
            int j = i;
            while (j + 1 < indices.Length && indices[j + 1] == indices[j] + 1) j++;
            runs.Add((indices[i], indices[j]));
            i = j + 1;
        }
        return runs.ToArray();
    }

    /// <summary>
    /// The order in which the member's gradient buckets become final during its backward: per stage of
    /// <see cref="DeviceModel.Backward"/> (0 the final layer, 1 + j block depth - 1 - j, depth + 1 the embeddings) the
    /// buckets none of whose parameters a later stage writes, the buffer's end first. Parameters the member's backward
    /// never writes (other members' biases, frozen ones) are final once zeroed, so count as stage 0.
    /// </summary>
    private static int[][] Schedule(DeviceTrainingState state, SiTModel member, int bucketFloats)
    {
        int depth = member.Blocks.Count;
        var stageOf = new Dictionary<int, int>();
        foreach (var p in new[] { member.Final.LinearWeight, member.Final.LinearBias, member.Final.AdaWeight, member.Final.AdaBias })
            stageOf[state.IndexOf(p)] = 0;
        for (int i = 0; i < depth; i++)
            foreach (var p in member.Blocks[i].Parameters)
                stageOf[state.IndexOf(p)] = Math.Max(stageOf.GetValueOrDefault(state.IndexOf(p)), depth - i);
        foreach (var p in member.Parameters) stageOf.TryAdd(state.IndexOf(p), depth + 1);
        int buckets = (int)((state.Length + bucketFloats - 1) / bucketFloats);
        var bucketStage = new int[buckets];
        foreach (var (index, stage) in stageOf)
        {
            var (offset, length) = state.Extent(index);
            if (length == 0) continue;
            for (long b = offset / bucketFloats; b <= (offset + length - 1) / bucketFloats; b++) bucketStage[b] = Math.Max(bucketStage[b], stage);
        }
        var order = new List<int>[depth + 2];
        for (int i = 0; i < order.Length; i++) order[i] = [];
        for (int b = buckets - 1; b >= 0; b--) order[bucketStage[b]].Add(b);
        return order.Select(list => list.ToArray()).ToArray();
    }

    /// <summary>Releases <paramref name="buckets"/> of the state's sum along the chain, with this rank's parts of the step.</summary>
    private void Release(DeviceTrainingState state, int[] buckets, bool sumHoldsEarlierParts)
    {
        long size = _exchange!.BucketFloats;
        foreach (int b in buckets)
        {
            long offset = b * size;
            _chain!.Release(state.Sum, offset, Math.Min(size, state.Length - offset), _parts, sumHoldsEarlierParts);
        }
    }

    /// <inheritdoc/>
    public TrainingStepResult Step(TrainingBatch batch)
    {
        var state = _state ?? throw new InvalidOperationException("Attach must precede Step.");
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.TotalShards != batch.Shards * _comm.Size)
            throw new MediatorDiTException($"the batch holds {batch.Shards} of {batch.TotalShards} parts, but {_comm.Size} ranks share it.");
        if ((uint)batch.Member >= (uint)_members.Length)
            throw new ArgumentOutOfRangeException(nameof(batch), $"member {batch.Member} is outside the network's {_members.Length}.");
        var host = _network!.Members[batch.Member];
        var model = _members[batch.Member];
        var k = _kernels;
        int size = batch.Labels.Length, shards = batch.Shards, part = size / shards;
        int per = batch.X1.Length / size, perInput = batch.Xt.Length / size;
        model.CheckLabels(batch.Labels);
        // The member's position biases from the current weights (they changed in the last step's update).
        using (k.Stage("training: position biases (host)")) model.Weights.RefreshPositionBiases(host);
        var a = model.ActivationsFor(part);
        var g = model.BackwardBuffersFor(part);
        if (g.Output.Length != (long)part * per || g.Noise.Length != (long)part * per || a.Input.Length != (long)part * perInput)
            throw new MediatorDiTException($"the batch's samples ({perInput} input, {per} target floats) do not fit the model's prediction ({g.Output.Length / part} floats).");
        if (_losses.Length < part) _losses = new float[part];
        if (_partLosses.Length < batch.TotalShards) _partLosses = new double[batch.TotalShards];
        bool ranks = _comm.Size > 1, onDevice = _chain is not null;
        int length = (int)state.Gradients.Length;
        if (ranks && !onDevice && _local.Length < (long)shards * length) (_local, _sum) = (new float[(long)shards * length], new float[length]);
        if (onDevice)
        {
            // Rank 0 starts the chain from its own running sum; later ranks add every part of theirs to the received sum.
            bool keep = _comm.Rank > 0 && shards > 1;
            if (keep && (_stored is null || _stored.Length < (long)(shards - 1) * length))
            {
                _stored?.Dispose();
                _stored = _kernels.Accelerator.Allocate1D<float>((long)(shards - 1) * length);
            }
            int count = _comm.Rank > 0 ? shards : 1;
            if (_parts.Length != count) _parts = new ArrayView<float>[count];
            for (int p = 0; p < count - 1; p++) _parts[p] = ((ArrayView<float>)_stored!.View).SubView((long)p * length, length);
            _parts[count - 1] = state.Gradients;
        }

        for (int s = 0; s < shards; s++)
        {
            int start = s * part;
            using (k.Stage("training: zero gradients, upload the batch"))
            {
                k.Zero(state.Gradients);
                a.Input.CopyFromCPU(batch.Xt.Span.Slice(start * perInput, part * perInput));
                model.UploadTimes(a, batch.T.AsSpan(start, part));
                a.Labels.CopyFromCPU(batch.Labels.AsSpan(start, part));
                g.Noise.CopyFromCPU(batch.X0.Span.Slice(start * per, part * per));
                g.Data.CopyFromCPU(batch.X1.Span.Slice(start * per, part * per));
            }
            model.TrainingForward(a);
            using (k.Stage("training: loss"))
            {
                var (coefficients, mode) = TrainingKernels.LossCoefficientsFor(_transport, batch.T.AsSpan(start, part), per);
                g.LossCoefficients.CopyFromCPU(coefficients);
                k.TrainingLoss(a.Output, g.Noise, g.Data, g.LossCoefficients, mode, g.Output, g.Losses);
                if (batch.TotalShards > 1) k.Scale(g.Output, 1f / batch.TotalShards); // each part's mean loss weighs 1 / parts of the global batch
            }
            bool chainStarts = onDevice && s == shards - 1, continues = _comm.Rank == 0 && shards > 1;
            if (chainStarts && _exchange!.Overlap)
            {
                var schedule = _schedule[batch.Member];
                model.Backward(a, g, stage => Release(state, schedule[stage], continues));
            }
            else model.Backward(a, g);
            // The parts' gradients added one part after another: part 0 + part 1 + ..., as the CPU backend adds them;
            // over several ranks every part goes to the host and the ranks add all of them in that order, or the
            // devices pass the running sum along the ranks (the step's last part joins bucket by bucket).
            if (chainStarts)
            {
                if (!_exchange!.Overlap)
                    foreach (var buckets in _schedule[batch.Member]) Release(state, buckets, continues);
            }
            else if (onDevice)
            {
                if (_comm.Rank > 0) state.Gradients.CopyTo(_parts[s]);
                else if (s == 0) state.Gradients.CopyTo(state.Sum);
                else k.AddInto(state.Sum, state.Gradients);
            }
            else if (ranks) state.Gradients.CopyToCPU(_local.AsSpan(s * length, length));
            else if (shards > 1)
            {
                if (s == 0) state.Gradients.CopyTo(state.Sum);
                else k.AddInto(state.Sum, state.Gradients);
            }
            k.Synchronize();
            g.Losses.CopyToCPU(_losses.AsSpan(0, part));
            double partLoss = 0;
            foreach (float l in _losses.AsSpan(0, part)) partLoss += l;
            _partLosses[s] = partLoss;
        }
        if (ranks)
        {
            if (onDevice) _chain!.Finish(state.Sum);
            else
            {
                _comm.SumInOrder(_local.AsSpan(0, shards * length), length, _sum.AsSpan(0, length));
                state.Sum.CopyFromCPU(_sum.AsSpan(0, length));
            }
            if (_rankLosses.Length != shards) _rankLosses = new double[shards];
            _partLosses.AsSpan(0, shards).CopyTo(_rankLosses);
            _comm.AllGather<double>(_rankLosses, _partLosses.AsSpan(0, batch.TotalShards));
        }
        double lossSum = 0;
        foreach (double l in _partLosses.AsSpan(0, batch.TotalShards)) lossSum += l;
        var gradients = ranks || shards > 1 ? state.Sum : state.Gradients;

        using (k.Stage("training: gradient norm and clipping")) k.GradientNormAndClip(gradients, state.NormPartials, state.NormResult, batch.GradClip);
        _optimizer!.LearningRate = batch.LearningRate;
        using (k.Stage("training: AdamW, EMA and bf16 weight copies")) OptimizerStep(state, gradients, batch.Member, batch.EmaDecay);
        k.Synchronize();
        state.NormResult.SubView(0, 1).CopyToCPU(_norm.AsSpan());
        return new TrainingStepResult(lossSum / batch.GlobalSize, _norm[0]);
    }

    /// <summary>
    /// AdamW over the member's trainable parameters, then the EMA of every parameter and, in bf16, the weights' bf16
    /// copy, in one pass over the flat buffers (<see cref="KernelSet.OptimizerUpdate"/>): one launch per stretch of the
    /// member's runs whose step counts agree (each parameter keeps its own count, as the CPU optimiser), and one per
    /// stretch between them (frozen parameters, other members' position biases), which only the EMA and the copy
    /// read. The same operations as AdamW, Training.Ema.Update and the rounding in passes of their own.
    /// </summary>
    private void OptimizerStep(DeviceTrainingState state, ILGPU.ArrayView<float> gradients, int member, double emaDecay)
    {
        var copy = _products.Bf16CopyOf(state.Values);
        long done = 0;
        void Update(long end, AdamWScalars? adamW)
        {
            var p = state.Values.SubView(done, end - done);
            _kernels.OptimizerUpdate(p, gradients.SubView(done, end - done), state.ExpAvg.SubView(done, end - done), state.ExpAvgSq.SubView(done, end - done),
                state.Ema.SubView(done, end - done), copy.Length > 0 ? copy.SubView(done, end - done) : default, adamW, emaDecay);
            done = end;
        }
        foreach (var (first, last) in _runs[member])
            for (int i = first; i <= last;)
            {
                int j = i;
                while (j + 1 <= last && state.Steps[j + 1] == state.Steps[i]) j++;
                long step = state.Steps[i] + 1;
                for (int p = i; p <= j; p++) state.Steps[p] = step;
                var (start, _) = state.Extent(i);
                var (lastStart, lastLength) = state.Extent(j);
                if (start > done) Update(start, null);
                Update(lastStart + lastLength, _optimizer!.ScalarsAt(step));
                i = j + 1;
            }
        if (done < state.Length) Update(state.Length, null);
    }

    /// <inheritdoc/>
    public void SyncToHost()
    {
        if (_state is null) return;
        _state.Store(_ema!, _optimizer!);
    }

    private void DisposeState()
    {
        foreach (var member in _members) member.Dispose();
        _members = [];
        _stored?.Dispose();
        _stored = null;
        _products.Dispose();
        _state?.Dispose();
        _state = null;
    }

    /// <summary>Frees the device state and buffers (the accelerator stays the caller's).</summary>
    public void Dispose()
    {
        DisposeState();
        _gemm.Dispose();
        if (_exchange is { OwnsTransport: true }) _exchange.Transport.Dispose();
    }
}
