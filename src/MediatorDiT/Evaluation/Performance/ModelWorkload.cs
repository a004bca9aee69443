using MediatorDiT.Models;
using MediatorDiT.Tensors;
using MediatorDiT.Training;

namespace MediatorDiT.Evaluation.Performance;

/// <summary>
/// A registered model with random weights and inputs, ready to time: <see cref="Forward"/> and
/// <see cref="TrainStep"/> (forward, backward, AdamW). FLOPs are the counter's figure x 2 (multiply and
/// add) per image; a training step counts three forwards (forward + backward), AdamW not counted.
/// </summary>
internal sealed class ModelWorkload
{
    private readonly Tensor _x, _dOut;
    private readonly float[] _t;
    private readonly int[] _y;
    private AdamW? _optimizer;

    public SiTModel Model { get; }
    public int Batch { get; }
    public double ForwardFlops { get; }
    public double TrainFlops => 3 * ForwardFlops;

    public ModelWorkload(ModelConfig config, int batch, ulong seed = 1)
    {
        Model = new SiTModel(config);
        Batch = batch;
        // Random weights everywhere (the official init zeroes adaLN and the output layer, which would let
        // the gates skip real work in no kernel but keep the numbers trivial).
        var rng = new RandomSource(seed);
        foreach (var p in Model.Parameters)
            if (p.Trainable) rng.FillGaussian(p.Value.Span, 0, 0.02f);
        _x = new Tensor(batch, config.InChannels, config.InputSize, config.InputSize);
        rng.FillGaussian(_x.Span);
        _t = Enumerable.Range(0, batch).Select(_ => (float)rng.NextDouble()).ToArray();
        _y = Enumerable.Range(0, batch).Select(_ => rng.NextInt(config.NumClasses)).ToArray();
        _dOut = new Tensor(batch, config.ReturnedChannels, config.InputSize, config.InputSize);
        rng.FillGaussian(_dOut.Span);
        ForwardFlops = FlopCounter.Count(config).PerImage * 2 * batch;
    }

    public void Forward() => Model.Forward(_x, _t, _y);

    public void TrainStep()
    {
        _optimizer ??= new AdamW(Model, lr: 1e-4);
        Model.Forward(_x, _t, _y);
        using (OpProfiler.Time("zero_grad")) Model.ZeroGrad();
        Model.Backward(_dOut);
        using (OpProfiler.Time("adamw")) _optimizer.Update();
    }
}
