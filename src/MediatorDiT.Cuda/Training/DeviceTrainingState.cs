using ILGPU;
using ILGPU.Runtime;
using MediatorDiT.Cuda.Kernels;
using MediatorDiT.Nn;
using MediatorDiT.Tensors;
using MediatorDiT.Training;

namespace MediatorDiT.Cuda.Training;

/// <summary>
/// A run's state on the device: every distinct parameter of the <see cref="TrainableNetwork"/> (frozen ones too) laid
/// end to end in its Parameters order in one flat buffer, and beside it, in the same layout, the gradients, the sum of
/// the parts' gradients, AdamW's two moments and the EMA. A parameter is found by its value tensor, which the members
/// of a shared-weight ladder share. AdamW's step counts stay on the host (they only feed its scalars).
/// </summary>
internal sealed class DeviceTrainingState : IDisposable
{
    private readonly Accelerator _accelerator;
    private readonly Dictionary<Tensor, int> _index = new(ReferenceEqualityComparer.Instance);
    private readonly long[] _offsets;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _values, _gradients, _sum, _expAvg, _expAvgSq, _ema, _partials, _norm;

    public DeviceTrainingState(Accelerator accelerator, TrainableNetwork network)
    {
        _accelerator = accelerator;
        Parameters = network.Parameters;
        _offsets = new long[Parameters.Count + 1];
        for (int i = 0; i < Parameters.Count; i++)
        {
            _index[Parameters[i].Value] = i;
            _offsets[i + 1] = _offsets[i] + Parameters[i].Value.Length;
        }
        Length = _offsets[^1];
        if (Length == 0) throw new MediatorDiTException("the network has no parameters.");
        _values = accelerator.Allocate1D<float>(Length);
        _gradients = accelerator.Allocate1D<float>(Length);
        _sum = accelerator.Allocate1D<float>(Length);
        _expAvg = accelerator.Allocate1D<float>(Length);
        _expAvgSq = accelerator.Allocate1D<float>(Length);
        _ema = accelerator.Allocate1D<float>(Length);
        _partials = accelerator.Allocate1D<float>(KernelSet.NormPartials(Length));
        _norm = accelerator.Allocate1D<float>(2);
        Steps = new long[Parameters.Count];
    }

    /// <summary>The network's distinct parameters, in the buffers' order.</summary>
    public IReadOnlyList<Parameter> Parameters { get; }
    /// <summary>Floats of each buffer.</summary>
    public long Length { get; }
    /// <summary>AdamW's update count per parameter (index as <see cref="Parameters"/>; 0 for frozen ones).</summary>
    public long[] Steps { get; }

    public ArrayView<float> Values => _values.View;
    public ArrayView<float> Gradients => _gradients.View;
    /// <summary>The parts' gradients summed in part order (a batch of several parts).</summary>
    public ArrayView<float> Sum => _sum.View;
    public ArrayView<float> ExpAvg => _expAvg.View;
    public ArrayView<float> ExpAvgSq => _expAvgSq.View;
    public ArrayView<float> Ema => _ema.View;
    /// <summary>Scratch of the gradient norm: its group partials and (norm, clip scale).</summary>
    public ArrayView<float> NormPartials => _partials.View;
    /// <inheritdoc cref="NormPartials"/>
    public ArrayView<float> NormResult => _norm.View;

    /// <summary>The index of the parameter holding <paramref name="p"/>'s value tensor.</summary>
    public int IndexOf(Parameter p) =>
        _index.TryGetValue(p.Value, out int i) ? i : throw new KeyNotFoundException($"parameter '{p.Name}' is not part of the trained network.");

    /// <summary>Parameter <paramref name="index"/>'s floats in <paramref name="buffer"/> (one of this state's views).</summary>
    public ArrayView<float> Slice(ArrayView<float> buffer, int index) => buffer.SubView(_offsets[index], _offsets[index + 1] - _offsets[index]);

    /// <summary>Where parameter <paramref name="index"/>'s floats start in every buffer, and how many there are.</summary>
    public (long Offset, long Length) Extent(int index) => (_offsets[index], _offsets[index + 1] - _offsets[index]);

    /// <summary>Floats [first, end) of parameters first..last in <paramref name="buffer"/>: a run of neighbours updated by one launch.</summary>
    public ArrayView<float> Range(ArrayView<float> buffer, int first, int last) => buffer.SubView(_offsets[first], _offsets[last + 1] - _offsets[first]);

    /// <summary>Uploads the host state: values, the EMA (parameter by parameter in list order, as Ema.Update pairs them), AdamW's moments and step counts.</summary>
    public void Load(TrainableNetwork ema, AdamW optimizer)
    {
        if (ema.Parameters.Count != Parameters.Count) throw new ArgumentException("EMA and model have different parameter lists.");
        for (int i = 0; i < Parameters.Count; i++)
        {
            if (ema.Parameters[i].Value.Length != Parameters[i].Value.Length)
                throw new ArgumentException($"the EMA's '{ema.Parameters[i].Name}' differs in size from the model's '{Parameters[i].Name}'.");
            Slice(Values, i).CopyFromCPU(Parameters[i].Value.Span);
            Slice(Ema, i).CopyFromCPU(ema.Parameters[i].Value.Span);
        }
        ExpAvg.MemSetToZero();
        ExpAvgSq.MemSetToZero();
        Array.Clear(Steps);
        foreach (var (param, expAvg, expAvgSq, step) in optimizer.State)
        {
            int i = IndexOf(param);
            Slice(ExpAvg, i).CopyFromCPU(expAvg.Span);
            Slice(ExpAvgSq, i).CopyFromCPU(expAvgSq.Span);
            Steps[i] = step;
        }
    }

    /// <summary>Downloads the state into the host objects (after every queued launch).</summary>
    public void Store(TrainableNetwork ema, AdamW optimizer)
    {
        _accelerator.Synchronize();
        for (int i = 0; i < Parameters.Count; i++)
        {
            Slice(Values, i).CopyToCPU(Parameters[i].Value.Span);
            Slice(Ema, i).CopyToCPU(ema.Parameters[i].Value.Span);
        }
        foreach (var (param, expAvg, expAvgSq, _) in optimizer.State)
        {
            int i = IndexOf(param);
            Slice(ExpAvg, i).CopyToCPU(expAvg.Span);
            Slice(ExpAvgSq, i).CopyToCPU(expAvgSq.Span);
            optimizer.RestoreStep(param, Steps[i]);
        }
    }

    public void Dispose()
    {
        foreach (var buffer in new[] { _values, _gradients, _sum, _expAvg, _expAvgSq, _ema, _partials, _norm }) buffer.Dispose();
    }
}
