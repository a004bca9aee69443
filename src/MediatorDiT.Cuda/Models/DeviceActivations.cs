using ILGPU;
using ILGPU.Runtime;
using MediatorDiT.Models;

namespace MediatorDiT.Cuda.Models;

/// <summary>
/// Every activation buffer of one device forward for a batch of B images, allocated together and reused by every
/// call of that batch size. Shapes as the CPU backend's tensors. For sampling the blocks run one after another and
/// share one set of block buffers; for training (<c>perBlock</c>) each block keeps its own, which its
/// backward reads. With <c>bf16Operands</c> (bf16 products whose operands their producers write,
/// LinearProducts.OperandsFromProducers) each block also has the bf16 inputs of its qkv, proj, fc1 and fc2, and the
/// fp32 inputs that only those products read are not kept per block: H1 and H2 are one set of scratch for all blocks
/// (the fp32 LayerNorm output a thread-per-row kernel rounds, or an observer reads), GELU's output has no fp32 buffer.
/// Training full attention that way, each block keeps q, k and v as the bf16 head-major operands the forward made
/// (6 bytes a value, which the backward's products read without moving them again) in place of its fp32 qkv rows
/// (12 bytes a value; one set of scratch for all blocks). With bf16 products (<c>bf16Products</c>) fc1's output is
/// stored in bf16 (as its product writes it), and training full attention with <c>keepsProbabilities</c>
/// (<see cref="AttentionProducts.KeepsProbabilitiesFor"/>) each block also keeps the forward's attention probabilities
/// P in bf16 (B, H, N, N), which its backward reads in place of making the logits again.
/// </summary>
internal sealed class DeviceActivations : IDisposable
{
    private readonly List<MemoryBuffer1D<float, Stride1D.Dense>> _buffers = [];
    private readonly List<MemoryBuffer1D<ushort, Stride1D.Dense>> _halves = [];
    private readonly MemoryBuffer1D<int, Stride1D.Dense> _labels;
    private readonly DeviceBlockActivations[] _blocks;
    private readonly ArrayView<float>[] _streams;
    private readonly int _chunk;

    public DeviceActivations(ModelConfig cfg, int batch, Accelerator accelerator, bool perBlock = false, bool bf16Operands = false,
        bool bf16Products = false, bool keepsProbabilities = false)
    {
        ArrayView<float> New(long length)
        {
            var buffer = accelerator.Allocate1D<float>(Math.Max(1, length));
            _buffers.Add(buffer);
            return ((ArrayView<float>)buffer.View).SubView(0, length);
        }
        ArrayView<ushort> New16(long length)
        {
            var buffer = accelerator.Allocate1D<ushort>(Math.Max(1, length));
            _halves.Add(buffer);
            return ((ArrayView<ushort>)buffer.View).SubView(0, length);
        }
        Batch = batch;
        int d = cfg.HiddenSize, n = cfg.NumTokens, p = cfg.PatchSize;
        long rows = (long)batch * n;
        _chunk = batch * d;
        Input = New((long)batch * cfg.InChannels * cfg.InputSize * cfg.InputSize);
        _labels = accelerator.Allocate1D<int>(Math.Max(1, batch));
        Labels = ((ArrayView<int>)_labels.View).SubView(0, batch);
        Patches = New(rows * cfg.InChannels * p * p);
        X = New(rows * d);
        Frequencies = New((long)batch * TimestepEmbedder.FrequencySize);
        TimeHidden = New(batch * d);
        TimeActivated = New(batch * d);
        TimeEmbedding = New(batch * d);
        Condition = New(batch * d);
        SiluCondition = New(batch * d);
        FinalModulation = New(batch * 2L * d);
        ModulationChunks = New(12L * batch * d);
        Normalized = New(rows * d);
        H = New(rows * d);
        Stats = New(2 * rows);
        TokensOut = New(rows * p * p * cfg.OutChannels);
        Output = New((long)batch * cfg.ReturnedChannels * cfg.InputSize * cfg.InputSize);
        PerBlock = perBlock;
        _blocks = new DeviceBlockActivations[perBlock ? cfg.Depth : 1];
        bool fullAttention = cfg.Attention != AttentionKind.Mediator;
        for (int i = 0; i < _blocks.Length; i++)
            _blocks[i] = new DeviceBlockActivations(cfg, batch, New, bf16Operands ? New16 : null, bf16Operands && i > 0 ? _blocks[0] : null,
                keepsQkvHeads: perBlock && bf16Operands && fullAttention, allocateBf16Products: bf16Products ? New16 : null,
                keepsProbabilities: perBlock && keepsProbabilities);
        // The residual stream between the blocks: X in place for sampling; for training each block's input is kept (its
        // first LayerNorm's backward makes xhat again from it), X the first block's, then one buffer per block output.
        _streams = new ArrayView<float>[cfg.Depth + 1];
        _streams[0] = X;
        for (int i = 1; i <= cfg.Depth; i++) _streams[i] = perBlock ? New(rows * d) : X;
    }

    /// <summary>B, the batch size the buffers are for.</summary>
    public int Batch { get; }
    /// <summary>x (B, C, S, S) as uploaded.</summary>
    public ArrayView<float> Input { get; }
    /// <summary>y (B).</summary>
    public ArrayView<int> Labels { get; }
    /// <summary>Patches (B*N, C p^2).</summary>
    public ArrayView<float> Patches { get; }
    /// <summary>The residual stream (B*N, D) after the embeddings: the first block's input (and, sampling, every block's input and output).</summary>
    public ArrayView<float> X { get; }
    /// <summary>Timestep frequencies (B, 256), computed on the host (DeviceModel.UploadTimes).</summary>
    public ArrayView<float> Frequencies { get; }
    /// <summary>The timestep MLP's hidden row before and after SiLU, and its output (B, D).</summary>
    public ArrayView<float> TimeHidden { get; }
    /// <inheritdoc cref="TimeHidden"/>
    public ArrayView<float> TimeActivated { get; }
    /// <inheritdoc cref="TimeHidden"/>
    public ArrayView<float> TimeEmbedding { get; }
    /// <summary>c = t_emb + y_emb and SiLU(c) (B, D).</summary>
    public ArrayView<float> Condition { get; }
    /// <inheritdoc cref="Condition"/>
    public ArrayView<float> SiluCondition { get; }
    /// <summary>The final layer's adaLN modulation (B, 2D): shift, scale.</summary>
    public ArrayView<float> FinalModulation { get; }
    /// <summary>
    /// Two sets of a modulation split into (K, B, D) chunks, K up to 6 (<see cref="Chunk"/>), the forward's scratch:
    /// consecutive blocks alternate between them, so that a block's modulation is split before the block ahead of it
    /// has read its last chunk (its gated residual and the next block's first LayerNorm run as one kernel).
    /// </summary>
    public ArrayView<float> ModulationChunks { get; }
    /// <summary>The final layer's LayerNorm xhat (B*N, D), its output after modulation (B*N, D) and (mean, rstd) per row.</summary>
    public ArrayView<float> Normalized { get; }
    /// <inheritdoc cref="Normalized"/>
    public ArrayView<float> H { get; }
    /// <inheritdoc cref="Normalized"/>
    public ArrayView<float> Stats { get; }
    /// <summary>The final layer's tokens (B*N, p^2 outC) and the prediction (B, returned channels, S, S).</summary>
    public ArrayView<float> TokensOut { get; }
    /// <inheritdoc cref="TokensOut"/>
    public ArrayView<float> Output { get; }

    /// <summary>Whether every block has its own buffers (training) rather than one shared set (sampling).</summary>
    public bool PerBlock { get; }

    /// <summary>
    /// The residual stream (B*N, D) entering block <paramref name="index"/> (<paramref name="index"/> = depth: leaving
    /// the last block, the final layer's input): <see cref="X"/> for sampling, kept apart per block for training.
    /// </summary>
    public ArrayView<float> Stream(int index) => _streams[index];

    /// <summary>Block <paramref name="index"/>'s buffers (the shared set when not <see cref="PerBlock"/>).</summary>
    public DeviceBlockActivations Block(int index) => _blocks[_blocks.Length == 1 ? 0 : index];

    /// <summary>The set of <see cref="ModulationChunks"/> (6 B D) that block <paramref name="block"/> splits its modulation into (block = depth: the final layer's).</summary>
    public ArrayView<float> ChunksOf(int block) => ModulationChunks.SubView((block & 1) * 6L * _chunk, 6L * _chunk);

    /// <summary>Chunk <paramref name="index"/> (B, D) of block <paramref name="block"/>'s modulation (<see cref="ChunksOf"/>).</summary>
    public ArrayView<float> Chunk(int block, int index) => ChunksOf(block).SubView((long)index * _chunk, _chunk);

    public void Dispose()
    {
        foreach (var buffer in _buffers) buffer.Dispose();
        foreach (var buffer in _halves) buffer.Dispose();
        _labels.Dispose();
    }
}

/// <summary>One block's forward buffers (B images, N tokens, D channels); what its backward reads.</summary>
internal sealed class DeviceBlockActivations
{
    /// <summary>
    /// The buffers from <paramref name="allocate"/>; with <paramref name="allocate16"/> also the products' bf16 inputs
    /// (and no fp32 GELU output), H1 and H2 then taken from <paramref name="scratchOf"/> when given (one set for all
    /// blocks). With <paramref name="keepsQkvHeads"/> (full attention, bf16 operands) the block keeps
    /// <see cref="QkvHeadsBf16"/>, and its fp32 qkv is <paramref name="scratchOf"/>'s when given. With
    /// <paramref name="allocateBf16Products"/> (bf16 products) fc1's output is <see cref="Fc1Bf16"/> (no fp32 one), and
    /// with <paramref name="keepsProbabilities"/> (training full attention where
    /// <see cref="AttentionProducts.KeepsProbabilitiesFor"/> holds) the block keeps <see cref="Probabilities16"/>.
    /// </summary>
    public DeviceBlockActivations(ModelConfig cfg, int batch, Func<long, ArrayView<float>> allocate, Func<long, ArrayView<ushort>>? allocate16 = null,
        DeviceBlockActivations? scratchOf = null, bool keepsQkvHeads = false, Func<long, ArrayView<ushort>>? allocateBf16Products = null,
        bool keepsProbabilities = false)
    {
        if (keepsQkvHeads && allocate16 is null) throw new ArgumentException("head-major bf16 q, k, v are kept only with bf16 operands", nameof(keepsQkvHeads));
        int d = cfg.HiddenSize, n = cfg.NumTokens, heads = cfg.NumHeads, m = cfg.MediatorNum;
        long rows = (long)batch * n;
        bool mediator = cfg.Attention == AttentionKind.Mediator;
        Modulation = allocate(batch * 6L * d);
        H1 = scratchOf?.H1 ?? allocate(rows * d);
        Stats1 = allocate(2 * rows);
        Qkv = keepsQkvHeads && scratchOf is not null ? scratchOf.Qkv : allocate(rows * 3 * d);
        Heads = allocate(rows * d);
        Lse = allocate(mediator ? 0 : rows * heads);
        MediatorTokens = allocate(mediator ? (long)batch * m * d : 0);
        A1 = allocate(mediator ? rows * heads * m : 0);
        A2 = allocate(mediator ? rows * heads * m : 0);
        Vm = allocate(mediator ? (long)batch * heads * m * cfg.HeadDim : 0);
        AttentionOut = allocate(rows * d);
        XMid = allocate(rows * d);
        H2 = scratchOf?.H2 ?? allocate(rows * d);
        Stats2 = allocate(2 * rows);
        Fc1 = allocate(allocateBf16Products is null ? rows * cfg.MlpHidden : 0);
        Gelu = allocate(allocate16 is null ? rows * cfg.MlpHidden : 0);
        Mlp = allocate(rows * d);
        if (allocateBf16Products is not null)
        {
            Fc1Bf16 = allocateBf16Products(rows * cfg.MlpHidden);
            if (keepsProbabilities) Probabilities16 = allocateBf16Products(rows * heads * n);
        }
        if (allocate16 is null) return;
        H1Bf16 = allocate16(rows * d);
        HeadsBf16 = allocate16(rows * d);
        H2Bf16 = allocate16(rows * d);
        GeluBf16 = allocate16(rows * cfg.MlpHidden);
        QkvHeadsBf16 = allocate16(keepsQkvHeads ? rows * 3 * d : 0);
    }

    /// <summary>The block's adaLN modulation (B, 6D): shift1, scale1, gate1, shift2, scale2, gate2.</summary>
    public ArrayView<float> Modulation { get; }
    /// <summary>
    /// The first LayerNorm's modulated output (the attention's input, B*N, D) and (mean, rstd) per row; it keeps no
    /// xhat, which its backward makes again from the block's input (<see cref="DeviceActivations.Stream"/>) and the stats.
    /// </summary>
    public ArrayView<float> H1 { get; }
    /// <inheritdoc cref="H1"/>
    public ArrayView<float> Stats1 { get; }
    /// <summary>
    /// qkv (B*N, 3D), the product without its bias: the attention cores add it as they read q, k and v. Scratch shared
    /// by the blocks (what the last forward left) when the block keeps <see cref="QkvHeadsBf16"/>.
    /// </summary>
    public ArrayView<float> Qkv { get; }
    /// <summary>The heads' outputs before proj (B*N, D).</summary>
    public ArrayView<float> Heads { get; }
    /// <summary>Full attention's row log-sum-exp (B, H, N).</summary>
    public ArrayView<float> Lse { get; }
    /// <summary>Mediator attention's T (B, n, D), A1 (B, H, n, N), A2 (B, H, N, n) and Vm (B, H, n, hd).</summary>
    public ArrayView<float> MediatorTokens { get; }
    /// <inheritdoc cref="MediatorTokens"/>
    public ArrayView<float> A1 { get; }
    /// <inheritdoc cref="MediatorTokens"/>
    public ArrayView<float> A2 { get; }
    /// <inheritdoc cref="MediatorTokens"/>
    public ArrayView<float> Vm { get; }
    /// <summary>The attention module's output before proj's bias (B*N, D; the gated residual adds it) and the stream after the attention branch.</summary>
    public ArrayView<float> AttentionOut { get; }
    /// <inheritdoc cref="AttentionOut"/>
    public ArrayView<float> XMid { get; }
    /// <summary>
    /// The second LayerNorm's modulated output (the MLP's input) and stats; it keeps no xhat, which its backward makes
    /// again from <see cref="XMid"/> and the stats.
    /// </summary>
    public ArrayView<float> H2 { get; }
    /// <inheritdoc cref="H2"/>
    public ArrayView<float> Stats2 { get; }
    /// <summary>
    /// The MLP's hidden rows before fc1's bias and GELU, and after both (B*N, hidden), and its output before fc2's bias
    /// (B*N, D): the kernels that read fc1's and fc2's products add their biases. With bf16 products the first is
    /// <see cref="Fc1Bf16"/> (this one empty).
    /// </summary>
    public ArrayView<float> Fc1 { get; }
    /// <inheritdoc cref="Fc1"/>
    public ArrayView<float> Gelu { get; }
    /// <inheritdoc cref="Fc1"/>
    public ArrayView<float> Mlp { get; }

    /// <summary>The bf16 inputs of qkv, proj, fc1 and fc2 (bf16 operands from their producers; empty otherwise).</summary>
    public ArrayView<ushort> H1Bf16 { get; }
    /// <inheritdoc cref="H1Bf16"/>
    public ArrayView<ushort> HeadsBf16 { get; }
    /// <inheritdoc cref="H1Bf16"/>
    public ArrayView<ushort> H2Bf16 { get; }
    /// <inheritdoc cref="H1Bf16"/>
    public ArrayView<ushort> GeluBf16 { get; }

    /// <summary>
    /// Full attention's q, k and v with qkv's bias, head-major (3, B, H, N, hd) in bf16, as the forward's products read
    /// them: kept for the backward's when training with bf16 operands from their producers (empty otherwise).
    /// </summary>
    public ArrayView<ushort> QkvHeadsBf16 { get; }

    /// <summary>fc1's product (B*N, hidden) before its bias, stored in bf16 as the bf16 product writes it (bf16 products; empty otherwise).</summary>
    public ArrayView<ushort> Fc1Bf16 { get; }

    /// <summary>
    /// Full attention's probabilities P (B, H, N, N) in bf16 as the forward's PV product read them: kept for the
    /// backward when training with bf16 products where <see cref="AttentionProducts.KeepsProbabilitiesFor"/> holds
    /// (empty otherwise: the backward makes S again).
    /// </summary>
    public ArrayView<ushort> Probabilities16 { get; }

    /// <summary>qkv's input H1 with its bf16 copy (when kept).</summary>
    public ProductOperand QkvInput => new(H1, H1Bf16);
    /// <summary>proj's input, the heads' outputs, with its bf16 copy (when kept).</summary>
    public ProductOperand ProjInput => new(Heads, HeadsBf16);
    /// <summary>fc1's input H2 with its bf16 copy (when kept).</summary>
    public ProductOperand Fc1Input => new(H2, H2Bf16);
    /// <summary>fc2's input, GELU's output, with its bf16 copy (when kept; then there is no fp32 one).</summary>
    public ProductOperand Fc2Input => new(Gelu, GeluBf16);
}
