using ILGPU;
using ILGPU.Runtime;
using MediatorDiT.Models;
using MediatorDiT.Nn;

namespace MediatorDiT.Cuda.Models;

/// <summary>
/// A <see cref="SiTModel"/>'s parameters on the device, each in the layout PyTorch (and the CPU backend) stores it:
/// uploaded once for sampling, or views into a training state's flat buffers (its values, or its gradients). For
/// the forward, mediator attention's position biases are kept built (bias1 (H, n, N), bias2 (H, N, n), by the
/// CPU's own resize and axis-bias code), since they depend on the parameters only; training rebuilds them each
/// step (<see cref="RefreshPositionBiases"/>).
/// </summary>
internal sealed class DeviceWeights : IDisposable
{
    private readonly List<MemoryBuffer1D<float, Stride1D.Dense>> _buffers = [];

    /// <summary>Uploads every parameter of <paramref name="model"/> and its built position biases (sampling).</summary>
    public DeviceWeights(SiTModel model, Accelerator accelerator)
        : this(model, accelerator, null, buildBiases: true) { }

    /// <summary>
    /// Each parameter's view from <paramref name="view"/> (a training state's values or gradients); with
    /// <paramref name="buildBiases"/> the position-bias tables are allocated and built from the host values.
    /// </summary>
    public DeviceWeights(SiTModel model, Accelerator accelerator, Func<Parameter, ArrayView<float>>? view, bool buildBiases)
    {
        ArrayView<float> Up(ReadOnlySpan<float> values)
        {
            var buffer = accelerator.Allocate1D<float>(Math.Max(1, values.Length));
            ArrayView<float> v = buffer.View.SubView(0, values.Length);
            if (!values.IsEmpty) v.CopyFromCPU(values);
            _buffers.Add(buffer);
            return v;
        }
        ArrayView<float> P(Parameter p) => view is null ? Up(p.Value.Span) : view(p);

        PosEmbed = P(model.PosEmbed);
        PatchWeight = P(model.XEmbedder.Weight);
        PatchBias = P(model.XEmbedder.Bias);
        TimeW0 = P(model.TEmbedder.W0);
        TimeB0 = P(model.TEmbedder.B0);
        TimeW2 = P(model.TEmbedder.W2);
        TimeB2 = P(model.TEmbedder.B2);
        LabelTable = P(model.YEmbedder.Table);
        Blocks = model.Blocks.Select(block =>
        {
            var w = new BlockWeights
            {
                Fc1Weight = P(block.Fc1Weight), Fc1Bias = P(block.Fc1Bias), Fc2Weight = P(block.Fc2Weight), Fc2Bias = P(block.Fc2Bias),
                AdaWeight = P(block.AdaWeight), AdaBias = P(block.AdaBias),
            };
            switch (block.Attention)
            {
                case FullAttention full:
                    return w with { QkvWeight = P(full.QkvWeight), QkvBias = P(full.QkvBias), ProjWeight = P(full.ProjWeight), ProjBias = P(full.ProjBias) };
                case MediatorAttention mediator:
                    w = w with
                    {
                        QkvWeight = P(mediator.QkvWeight), QkvBias = P(mediator.QkvBias), ProjWeight = P(mediator.ProjWeight), ProjBias = P(mediator.ProjBias),
                        Mediator = true, DwcWeight = P(mediator.DwcWeight), DwcBias = P(mediator.DwcBias),
                    };
                    if (view is not null)
                        w = w with
                        {
                            AnBias = view(mediator.AnBias), NaBias = view(mediator.NaBias), AhBias = view(mediator.AhBias), AwBias = view(mediator.AwBias),
                            HaBias = view(mediator.HaBias), WaBias = view(mediator.WaBias),
                        };
                    if (!buildBiases) return w;
                    var (bias1, bias2) = mediator.PositionBiases();
                    return w with { Bias1 = Up(bias1.Span), Bias2 = Up(bias2.Span) };
                default:
                    throw new MediatorDiTException($"the device backend has no kernels for '{block.Attention.Kind}' attention.");
            }
        }).ToArray();
        FinalLinearWeight = P(model.Final.LinearWeight);
        FinalLinearBias = P(model.Final.LinearBias);
        FinalAdaWeight = P(model.Final.AdaWeight);
        FinalAdaBias = P(model.Final.AdaBias);
        LabelRows = model.YEmbedder.Table.Value.Dim(0);
    }

    /// <summary>
    /// Rebuilds the position-bias tables from the parameter views' current values (training: the parameters change
    /// every step): the six bias parameters are downloaded into <paramref name="model"/>'s host tensors, built there
    /// by the CPU code, and the tables uploaded. A few KB per block; waits for the queued launches.
    /// </summary>
    public void RefreshPositionBiases(SiTModel model)
    {
        for (int i = 0; i < Blocks.Count; i++)
        {
            var w = Blocks[i];
            if (!w.Mediator || model.Blocks[i].Attention is not MediatorAttention mediator) continue;
            w.AnBias.CopyToCPU(mediator.AnBias.Value.Span);
            w.NaBias.CopyToCPU(mediator.NaBias.Value.Span);
            w.AhBias.CopyToCPU(mediator.AhBias.Value.Span);
            w.AwBias.CopyToCPU(mediator.AwBias.Value.Span);
            w.HaBias.CopyToCPU(mediator.HaBias.Value.Span);
            w.WaBias.CopyToCPU(mediator.WaBias.Value.Span);
            var (bias1, bias2) = mediator.PositionBiases();
            w.Bias1.CopyFromCPU(bias1.Span);
            w.Bias2.CopyFromCPU(bias2.Span);
        }
    }

    /// <summary>The weights the linear layers' matrix products read (the ones with bf16 copies in bf16), each (out, in).</summary>
    public IEnumerable<ArrayView<float>> Matrices
    {
        get
        {
            yield return PatchWeight;
            yield return TimeW0;
            yield return TimeW2;
            foreach (var block in Blocks)
            {
                yield return block.AdaWeight;
                yield return block.QkvWeight;
                yield return block.ProjWeight;
                yield return block.Fc1Weight;
                yield return block.Fc2Weight;
            }
            yield return FinalAdaWeight;
            yield return FinalLinearWeight;
        }
    }

    public ArrayView<float> PosEmbed { get; }
    public ArrayView<float> PatchWeight { get; }
    public ArrayView<float> PatchBias { get; }
    public ArrayView<float> TimeW0 { get; }
    public ArrayView<float> TimeB0 { get; }
    public ArrayView<float> TimeW2 { get; }
    public ArrayView<float> TimeB2 { get; }
    public ArrayView<float> LabelTable { get; }
    /// <summary>Rows of the label table: the classes, plus the null label when the model was trained with label dropout.</summary>
    public int LabelRows { get; }
    public IReadOnlyList<BlockWeights> Blocks { get; }
    public ArrayView<float> FinalLinearWeight { get; }
    public ArrayView<float> FinalLinearBias { get; }
    public ArrayView<float> FinalAdaWeight { get; }
    public ArrayView<float> FinalAdaBias { get; }

    public void Dispose()
    {
        foreach (var buffer in _buffers) buffer.Dispose();
        _buffers.Clear();
    }
}

/// <summary>One block's weights on the device; the mediator fields are set for mediator attention only.</summary>
internal sealed record BlockWeights
{
    public ArrayView<float> QkvWeight { get; init; }
    public ArrayView<float> QkvBias { get; init; }
    public ArrayView<float> ProjWeight { get; init; }
    public ArrayView<float> ProjBias { get; init; }
    public ArrayView<float> Fc1Weight { get; init; }
    public ArrayView<float> Fc1Bias { get; init; }
    public ArrayView<float> Fc2Weight { get; init; }
    public ArrayView<float> Fc2Bias { get; init; }
    public ArrayView<float> AdaWeight { get; init; }
    public ArrayView<float> AdaBias { get; init; }
    public bool Mediator { get; init; }
    /// <summary>(H, n, N): added to the mediators' key logits.</summary>
    public ArrayView<float> Bias1 { get; init; }
    /// <summary>(H, N, n): added to the queries' mediator logits.</summary>
    public ArrayView<float> Bias2 { get; init; }
    public ArrayView<float> DwcWeight { get; init; }
    public ArrayView<float> DwcBias { get; init; }
    /// <summary>The position-bias parameters (an, na: (H, n, 7, 7); ah, aw: (H, n, G); ha, wa: (H, G, n)), set for views of a training state.</summary>
    public ArrayView<float> AnBias { get; init; }
    /// <inheritdoc cref="AnBias"/>
    public ArrayView<float> NaBias { get; init; }
    /// <inheritdoc cref="AnBias"/>
    public ArrayView<float> AhBias { get; init; }
    /// <inheritdoc cref="AnBias"/>
    public ArrayView<float> AwBias { get; init; }
    /// <inheritdoc cref="AnBias"/>
    public ArrayView<float> HaBias { get; init; }
    /// <inheritdoc cref="AnBias"/>
    public ArrayView<float> WaBias { get; init; }
}
