using MediatorDiT.Diffusion;
using MediatorDiT.Nn;
using MediatorDiT.Tensors;
using MediatorDiT.Training.Distributed;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace MediatorDiT.Training;

/// <summary>
/// The CPU backend: steps computed on the host objects themselves, under the trainer's compute context. In a
/// data-parallel run each rank computes its parts of the batch, and the parts' gradients are summed in part order
/// over all ranks (<see cref="ICommunicator.SumInOrder"/>: the same additions in the same order as one process
/// makes), the loss sums gathered, so every rank takes the same step, bit for bit, whatever the number of ranks.
/// </summary>
/// <param name="transport">The transport whose loss is trained.</param>
/// <param name="communicator">The ranks sharing each batch; null: this process alone.</param>
public sealed class CpuTrainingBackend(Transport transport, ICommunicator? communicator = null) : ITrainingBackend
{
    private readonly ICommunicator _comm = communicator ?? SingleProcessCommunicator.Instance;
    private TrainableNetwork? _network, _ema;
    private AdamW? _optimizer;
    private float[] _local = [], _sum = [];

    /// <inheritdoc/>
    public string Name => _comm.Size == 1 ? "CPU" : $"CPU, {_comm.Size} ranks over {_comm.Name}";

    /// <summary>Bytes this rank received in the last step's exchange (0 in a single process).</summary>
    public long LastExchangeBytes { get; private set; }

    /// <summary>Time the last step spent in the exchange (including waiting for the other ranks).</summary>
    public TimeSpan LastExchangeTime { get; private set; }

    /// <inheritdoc/>
    public void Attach(TrainableNetwork network, TrainableNetwork ema, AdamW optimizer)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(ema);
        ArgumentNullException.ThrowIfNull(optimizer);
        (_network, _ema, _optimizer) = (network, ema, optimizer);
    }

    /// <inheritdoc/>
    public TrainingStepResult Step(TrainingBatch batch)
    {
        var network = _network ?? throw new InvalidOperationException("Attach must precede Step.");
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.TotalShards != batch.Shards * _comm.Size)
            throw new MediatorDiTException($"the batch holds {batch.Shards} of {batch.TotalShards} parts, but {_comm.Size} ranks share it.");
        var model = network.Members[batch.Member];
        var active = model.Parameters.Where(p => p.Trainable).ToArray();
        int size = batch.Labels.Length, shards = batch.Shards, part = size / shards, per = batch.X1.Length / size;
        double lossSum;
        LastExchangeBytes = 0;
        LastExchangeTime = TimeSpan.Zero;
        if (batch.TotalShards == 1)
        {
            using (OpProfiler.Time("zero_grad")) network.ZeroGrad();
            lossSum = ForwardBackward(model, batch, 0, size, 1);
        }
        else
        {
            // Each part's gradient on its own, then the sum over all parts in part order (on every rank alike).
            int length = active.Sum(p => p.Grad!.Length);
            var localLoss = new double[shards];
            if (_local.Length < (long)shards * length) _local = new float[(long)shards * length];
            for (int s = 0; s < shards; s++)
            {
                using (OpProfiler.Time("zero_grad")) network.ZeroGrad();
                localLoss[s] = ForwardBackward(model, batch, s * part, part, batch.TotalShards);
                Flatten(active, _local.AsSpan(s * length, length));
            }
            ReadOnlySpan<float> local = _local.AsSpan(0, shards * length);
            ReadOnlySpan<double> losses = localLoss;
            if (_comm.Size > 1)
            {
                var clock = System.Diagnostics.Stopwatch.StartNew();
                if (_sum.Length < length) _sum = new float[length];
                long bytes = _comm.SumInOrder(local, length, _sum.AsSpan(0, length));
                var allLosses = new double[batch.TotalShards];
                _comm.AllGather(losses, allLosses);
                LastExchangeTime = clock.Elapsed;
                LastExchangeBytes = bytes + (batch.TotalShards - shards) * sizeof(double);
                Unflatten(active, _sum.AsSpan(0, length));
                losses = allLosses;
            }
            else
            {
                SumInOrder(active, local, length, shards);
            }
            lossSum = 0;
            foreach (double l in losses) lossSum += l;
        }

        var normScope = OpProfiler.Time("grad_norm");
        double norm = Math.Sqrt(active.Sum(p => (double)TensorPrimitives.SumOfSquares(p.Grad!.Span)));
        if (batch.GradClip > 0 && norm > batch.GradClip)
        {
            float scale = (float)(batch.GradClip / (norm + 1e-6));
            foreach (var p in active) TensorPrimitives.Multiply(p.Grad!.Span, scale, p.Grad!.Span);
        }
        normScope.Dispose();
        _optimizer!.LearningRate = batch.LearningRate;
        using (OpProfiler.Time("adamw")) _optimizer.Update(active);
        using (OpProfiler.Time("ema")) Ema.Update(_ema!, network, batch.EmaDecay);
        return new TrainingStepResult(lossSum / batch.GlobalSize, norm);
    }

    /// <summary>Forward, loss and backward of samples [start, start + count), the output gradient scaled by 1/<paramref name="parts"/>; returns the loss sum.</summary>
    private double ForwardBackward(Models.SiTModel model, TrainingBatch batch, int start, int count, int parts)
    {
        int size = batch.Labels.Length;
        Tensor Slice(Tensor full)
        {
            int sample = full.Length / size;
            return count == size ? full : new(full.Span.Slice(start * sample, count * sample).ToArray(), [count, .. full.Shape[1..]]);
        }
        var t = count == size ? batch.T : batch.T.AsSpan(start, count).ToArray();
        Tensor prediction;
        using (OpProfiler.Time("forward"))
            prediction = model.Forward(Slice(batch.Xt), t, batch.Labels.AsSpan(start, count));
        var gradient = new Tensor(prediction.Shape);
        double sum = 0;
        using (OpProfiler.Time("loss"))
        {
            var losses = transport.TrainingLoss(prediction, t, Slice(batch.X0), Slice(batch.X1), gradient);
            foreach (float l in losses) sum += l;
        }
        if (parts > 1) TensorPrimitives.Multiply(gradient.Span, 1f / parts, gradient.Span);
        using (OpProfiler.Time("backward")) model.Backward(gradient);
        return sum;
    }

    private static void Flatten(Parameter[] active, Span<float> destination)
    {
        int offset = 0;
        foreach (var p in active)
        {
            p.Grad!.Span.CopyTo(destination.Slice(offset));
            offset += p.Grad.Length;
        }
    }

    private static void Unflatten(Parameter[] active, ReadOnlySpan<float> source)
    {
        int offset = 0;
        foreach (var p in active)
        {
            source.Slice(offset, p.Grad!.Length).CopyTo(p.Grad.Span);
            offset += p.Grad.Length;
        }
    }

    /// <summary>Each parameter's gradient = part 0's + part 1's + ... (left to right, element by element).</summary>
    private static void SumInOrder(Parameter[] active, ReadOnlySpan<float> parts, int length, int count)
    {
        int offset = 0;
        foreach (var p in active)
        {
            var grad = p.Grad!.Span;
            parts.Slice(offset, grad.Length).CopyTo(grad);
            for (int s = 1; s < count; s++) TensorPrimitives.Add(grad, parts.Slice(s * length + offset, grad.Length), grad);
            offset += grad.Length;
        }
    }

    /// <inheritdoc/>
    /// <remarks>Nothing to do: the CPU backend computes on the host objects.</remarks>
    public void SyncToHost() { }

    /// <summary>Holds no resources; does nothing.</summary>
    public void Dispose() { }
}
