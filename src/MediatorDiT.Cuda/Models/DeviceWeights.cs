using ILGPU;
using ILGPU.Runtime;
using MediatorDiT.Models;
using MediatorDiT.Nn;

namespace MediatorDiT.Cuda.Models;

/// <summary>
/// A loaded <see cref="SiTModel"/>'s parameters on the device, uploaded once, each in the layout PyTorch (and the CPU
/// backend) stores it; mediator attention's position biases are uploaded already built (bias1 (H, n, N), bias2
/// (H, N, n), by the CPU's own resize and axis-bias code), since they depend on the parameters only.
/// </summary>
internal sealed class DeviceWeights : IDisposable
{
    private readonly List<MemoryBuffer1D<float, Stride1D.Dense>> _buffers = [];

    public DeviceWeights(SiTModel model, Accelerator accelerator)
    {
        ArrayView<float> Up(ReadOnlySpan<float> values)
        {
            var buffer = accelerator.Allocate1D<float>(Math.Max(1, values.Length));
            ArrayView<float> view = buffer.View.SubView(0, values.Length);
            if (!values.IsEmpty) view.CopyFromCPU(values);
            _buffers.Add(buffer);
            return view;
        }
        ArrayView<float> P(Parameter p) => Up(p.Value.Span);

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
                    var (bias1, bias2) = mediator.PositionBiases();
                    return w with
                    {
                        QkvWeight = P(mediator.QkvWeight), QkvBias = P(mediator.QkvBias), ProjWeight = P(mediator.ProjWeight), ProjBias = P(mediator.ProjBias),
                        Mediator = true, Bias1 = Up(bias1.Span), Bias2 = Up(bias2.Span), DwcWeight = P(mediator.DwcWeight), DwcBias = P(mediator.DwcBias),
                    };
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
}
