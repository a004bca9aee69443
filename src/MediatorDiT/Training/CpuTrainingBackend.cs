using MediatorDiT.Diffusion;
using MediatorDiT.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace MediatorDiT.Training;

/// <summary>The CPU backend: steps computed on the host objects themselves, under the trainer's compute context.</summary>
public sealed class CpuTrainingBackend(Transport transport) : ITrainingBackend
{
    private TrainableNetwork? _network, _ema;
    private AdamW? _optimizer;

    /// <inheritdoc/>
    public string Name => "CPU";

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
        var model = network.Members[batch.Member];
        using (OpProfiler.Time("zero_grad")) network.ZeroGrad();
        int size = batch.Labels.Length, micro = size / batch.GradAccum, per = batch.X1.Length / size;
        double lossSum = 0;
        for (int m = 0; m < batch.GradAccum; m++)
        {
            Tensor Slice(Tensor full) => new(full.Span.Slice(m * micro * per, micro * per).ToArray(), [micro, .. full.Shape[1..]]);
            var tM = batch.T.AsSpan(m * micro, micro).ToArray();
            Tensor prediction;
            using (OpProfiler.Time("forward"))
                prediction = model.Forward(Slice(batch.Xt), tM, batch.Labels.AsSpan(m * micro, micro));
            var gradient = new Tensor(prediction.Shape);
            using (OpProfiler.Time("loss"))
            {
                var losses = transport.TrainingLoss(prediction, tM, Slice(batch.X0), Slice(batch.X1), gradient);
                foreach (float l in losses) lossSum += l;
            }
            if (batch.GradAccum > 1) TensorPrimitives.Multiply(gradient.Span, 1f / batch.GradAccum, gradient.Span);
            using (OpProfiler.Time("backward")) model.Backward(gradient);
        }

        var normScope = OpProfiler.Time("grad_norm");
        var active = model.Parameters.Where(p => p.Trainable).ToArray();
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
        return new TrainingStepResult(lossSum / size, norm);
    }

    /// <inheritdoc/>
    /// <remarks>Nothing to do: the CPU backend computes on the host objects.</remarks>
    public void SyncToHost() { }

    /// <summary>Holds no resources; does nothing.</summary>
    public void Dispose() { }
}
