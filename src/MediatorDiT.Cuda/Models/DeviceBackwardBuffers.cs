using ILGPU;
using ILGPU.Runtime;
using MediatorDiT.Cuda.Kernels;
using MediatorDiT.Models;

namespace MediatorDiT.Cuda.Models;

/// <summary>
/// The backward pass's gradient buffers for a batch of B images (B*N rows of D channels), allocated once per batch
/// size beside the training activations and reused by every block (their backwards run one after another). With
/// <c>bf16Operands</c> the gated residuals' and GELU's input gradients, and full attention's dqkv, also have the bf16
/// copies their kernels write for the products that read them. With <c>bf16Products</c> fc2's input gradient, which
/// GELU's backward reads, is stored in bf16 by its product (<see cref="GeluUpstreamBf16"/>).
/// </summary>
internal sealed class DeviceBackwardBuffers : IDisposable
{
    private readonly List<MemoryBuffer1D<float, Stride1D.Dense>> _buffers = [];
    private readonly MemoryBuffer1D<double, Stride1D.Dense> _coefficients;
    private readonly MemoryBuffer1D<ushort, Stride1D.Dense>? _halves, _upstream;

    public DeviceBackwardBuffers(ModelConfig cfg, int batch, Accelerator accelerator, bool bf16Operands = false, bool bf16Products = false)
    {
        ArrayView<float> New(long length)
        {
            var buffer = accelerator.Allocate1D<float>(Math.Max(1, length));
            _buffers.Add(buffer);
            return ((ArrayView<float>)buffer.View).SubView(0, length);
        }
        Batch = batch;
        int d = cfg.HiddenSize, n = cfg.NumTokens, heads = cfg.NumHeads, m = cfg.MediatorNum, p = cfg.PatchSize;
        long rows = (long)batch * n;
        bool mediator = cfg.Attention == AttentionKind.Mediator;
        Output = New((long)batch * cfg.ReturnedChannels * cfg.InputSize * cfg.InputSize);
        TokensOut = New(rows * p * p * cfg.OutChannels);
        X = New(rows * d);
        XMid = New(rows * d);
        H = New(rows * d);
        Branch = New(rows * d);
        Heads = New(rows * d);
        Qkv = New(rows * 3 * d);
        Hidden = New(bf16Operands ? 0 : rows * cfg.MlpHidden); // bf16 operands (bf16 products): GELU's backward reads and writes bf16 only
        Modulation = New(batch * 6L * d);
        FinalModulation = New(batch * 2L * d);
        SiluCondition = New(batch * d);
        Condition = New(batch * d);
        TimeActivated = New(batch * d);
        Delta = New(mediator ? 0 : rows * heads);
        long maps = rows * heads * m, small = (long)batch * heads * m * cfg.HeadDim;
        S1 = New(mediator ? maps : 0);
        S2 = New(mediator ? maps : 0);
        TapsPerImage = New(mediator ? batch * 10L * d : 0);
        Vm = New(mediator ? small : 0);
        T = New(mediator ? small : 0);
        Taps = New(mediator ? 9L * d : 0);
        long table = (long)heads * m * n;
        Bias1 = New(mediator ? table : 0);
        Bias2 = New(mediator ? table : 0);
        Resized = New(mediator ? table : 0);
        ColumnPartials = New((long)KernelSet.BiasChunks(rows) * Math.Max(d, cfg.MlpHidden));
        Losses = New(batch);
        _coefficients = accelerator.Allocate1D<double>((long)batch * TrainingKernels.LossCoefficients);
        Noise = New((long)batch * cfg.InChannels * cfg.InputSize * cfg.InputSize);
        Data = New(Noise.Length);
        ResizeTaps = mediator ? new DeviceResizeTaps(accelerator, KernelSet.MediatorBiasSide, cfg.GridSize) : null;
        if (bf16Products && !bf16Operands)
        {
            _upstream = accelerator.Allocate1D<ushort>(Math.Max(1, rows * cfg.MlpHidden));
            GeluUpstreamBf16 = ((ArrayView<ushort>)_upstream.View).SubView(0, rows * cfg.MlpHidden);
        }
        if (!bf16Operands) return;
        long qkv16 = mediator ? 0 : rows * 3 * d; // mediator attention adds its pooling's and conv's gradients after the moves
        _halves = accelerator.Allocate1D<ushort>(rows * d + rows * cfg.MlpHidden + qkv16);
        var halves = (ArrayView<ushort>)_halves.View;
        BranchBf16 = halves.SubView(0, rows * d);
        HiddenBf16 = halves.SubView(rows * d, rows * cfg.MlpHidden);
        GeluUpstreamBf16 = HiddenBf16; // GELU's backward turns it into fc1's output gradient in place
        if (qkv16 > 0) QkvBf16 = halves.SubView(rows * d + rows * cfg.MlpHidden, qkv16);
    }

    /// <summary>B, the batch size the buffers are for.</summary>
    public int Batch { get; }
    /// <summary>dL/d(prediction) (B, returned channels, S, S), the loss's gradient, and dL/d(final tokens) (B*N, p^2 outC).</summary>
    public ArrayView<float> Output { get; }
    /// <inheritdoc cref="Output"/>
    public ArrayView<float> TokensOut { get; }
    /// <summary>dL/d(residual stream) (B*N, D) and dL/d(stream after a block's attention branch) (B*N, D).</summary>
    public ArrayView<float> X { get; }
    /// <inheritdoc cref="X"/>
    public ArrayView<float> XMid { get; }
    /// <summary>dL/d(a LayerNorm's modulated output) (B*N, D) and dL/d(a gated branch's output) (B*N, D).</summary>
    public ArrayView<float> H { get; }
    /// <inheritdoc cref="H"/>
    public ArrayView<float> Branch { get; }
    /// <summary>
    /// dL/d(per-head outputs) (B*N, D), dL/dqkv (B*N, 3D), dL/d(MLP hidden rows) (B*N, hidden; empty with bf16 products
    /// whose operands come from their producers, where only <see cref="HiddenBf16"/> holds it).
    /// </summary>
    public ArrayView<float> Heads { get; }
    /// <inheritdoc cref="Heads"/>
    public ArrayView<float> Qkv { get; }
    /// <inheritdoc cref="Heads"/>
    public ArrayView<float> Hidden { get; }
    /// <summary>The bf16 copies of <see cref="Branch"/> and <see cref="Hidden"/> (bf16 operands from their producers; empty otherwise).</summary>
    public ArrayView<ushort> BranchBf16 { get; }
    /// <inheritdoc cref="BranchBf16"/>
    public ArrayView<ushort> HiddenBf16 { get; }
    /// <summary>
    /// dL/d(GELU's output) (B*N, hidden) as fc2's bf16 product stores it (bf16 products; empty otherwise): with operands
    /// from their producers the same memory as <see cref="HiddenBf16"/>, which GELU's backward overwrites as it reads.
    /// </summary>
    public ArrayView<ushort> GeluUpstreamBf16 { get; }
    /// <summary>The chunk partials of proj's, fc1's and fc2's bias gradients (KernelSet.ColumnSumsByChunks), (chunks, hidden) at most.</summary>
    public ArrayView<float> ColumnPartials { get; }
    /// <summary>The bf16 copy of <see cref="Qkv"/> that full attention's backward writes (bf16 operands from their producers; empty otherwise).</summary>
    public ArrayView<ushort> QkvBf16 { get; }
    /// <summary>dL/dqkv as the operand of qkv's backward (with its bf16 copy after full attention's backward).</summary>
    public ProductOperand QkvGradient => new(Qkv, QkvBf16);
    /// <summary>dL/d(a gated branch's output) as the operand of its linear layer's backward.</summary>
    public ProductOperand BranchGradient => new(Branch, BranchBf16);
    /// <summary>dL/d(fc1's output) as the operand of fc1's backward.</summary>
    public ProductOperand HiddenGradient => new(Hidden, HiddenBf16);
    /// <summary>dL/d(a block's modulation) (B, 6D) and the final layer's (B, 2D).</summary>
    public ArrayView<float> Modulation { get; }
    /// <inheritdoc cref="Modulation"/>
    public ArrayView<float> FinalModulation { get; }
    /// <summary>dL/d(SiLU(c)), dL/dc and dL/d(the timestep MLP's activated row), each (B, D).</summary>
    public ArrayView<float> SiluCondition { get; }
    /// <inheritdoc cref="SiluCondition"/>
    public ArrayView<float> Condition { get; }
    /// <inheritdoc cref="SiluCondition"/>
    public ArrayView<float> TimeActivated { get; }
    /// <summary>Full attention's scratch rowsum(dO O) (B, H, N).</summary>
    public ArrayView<float> Delta { get; }
    /// <summary>Mediator attention's logit gradients dS1 (B, H, n, N) and dS2 (B, H, N, n).</summary>
    public ArrayView<float> S1 { get; }
    /// <inheritdoc cref="S1"/>
    public ArrayView<float> S2 { get; }
    /// <summary>Per-image depthwise tap and bias gradients (B, 10, D).</summary>
    public ArrayView<float> TapsPerImage { get; }
    /// <summary>Mediator attention's scratch (B, H, n, hd).</summary>
    public ArrayView<float> Vm { get; }
    /// <inheritdoc cref="Vm"/>
    public ArrayView<float> T { get; }
    /// <summary>The depthwise weight transposed to the taps the core reads (9, D).</summary>
    public ArrayView<float> Taps { get; }
    /// <summary>The position-bias tables' gradients summed over images (H n N each) and the resize's scratch.</summary>
    public ArrayView<float> Bias1 { get; }
    /// <inheritdoc cref="Bias1"/>
    public ArrayView<float> Bias2 { get; }
    /// <inheritdoc cref="Bias1"/>
    public ArrayView<float> Resized { get; }
    /// <summary>The loss's per-image coefficient rows (B, <see cref="TrainingKernels.LossCoefficients"/>), uploaded per part.</summary>
    public ArrayView<double> LossCoefficients => _coefficients.View;
    /// <summary>Each image's loss (B).</summary>
    public ArrayView<float> Losses { get; }
    /// <summary>The transport's noise x0 and data x1 (B, C, S, S).</summary>
    public ArrayView<float> Noise { get; }
    /// <inheritdoc cref="Noise"/>
    public ArrayView<float> Data { get; }
    /// <summary>The 7 -> G bilinear resize's taps (mediator attention only).</summary>
    public DeviceResizeTaps? ResizeTaps { get; }

    public void Dispose()
    {
        foreach (var buffer in _buffers) buffer.Dispose();
        _coefficients.Dispose();
        _halves?.Dispose();
        _upstream?.Dispose();
        ResizeTaps?.Dispose();
    }
}
