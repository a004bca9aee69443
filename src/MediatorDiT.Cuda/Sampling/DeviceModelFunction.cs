using ILGPU.Runtime;
using MediatorDiT.Cuda.Blas;
using MediatorDiT.Cuda.Kernels;
using MediatorDiT.Cuda.Models;
using MediatorDiT.Models;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;

namespace MediatorDiT.Cuda.Sampling;

/// <summary>
/// A loaded network evaluated on an ILGPU accelerator (a CUDA device, or the CPU accelerator), the device twin of
/// <see cref="NetworkFunction"/> and, with guidance, <see cref="GuidedNetworkFunction"/>: the weights are uploaded once,
/// activations allocated once per batch size, and each call uploads x, t, y and returns the prediction as a host
/// tensor. Works for both families (SiT and DiT, which returns all 2C channels with learn_sigma) and both attention
/// kinds. The linear layers' matrix products run at <see cref="Precision"/> (fp32 reproduces the CPU model to rounding;
/// bf16 rounds their inputs to bf16 and accumulates in fp32, the rest of the network staying fp32). Not thread-safe: a
/// sampler calls it one step at a time. Dispose it to free the device memory.
/// </summary>
public sealed class DeviceModelFunction : IModelFunction, IAttentionInputSource, IDisposable
{
    private readonly DeviceModel _model;
    private readonly IDeviceGemm _gemm;
    private readonly LinearProducts _products;

    /// <summary>
    /// Uploads <paramref name="model"/>'s weights to <paramref name="accelerator"/>; with active
    /// <paramref name="guidance"/> (scale above 1) every call is the official forward_with_cfg.
    /// </summary>
    /// <param name="model">The loaded network (its parameters are read once, here).</param>
    /// <param name="accelerator">The accelerator to run on; it stays the caller's to dispose.</param>
    /// <param name="guidance">Classifier-free guidance, or null (or a scale of 1) for none.</param>
    /// <param name="precision">The matrix products' precision (bf16 keeps bf16 copies of the weight matrices beside the fp32 ones).</param>
    /// <param name="fullAttention">How full attention's core runs (<see cref="FullAttentionCore"/>; ignored by mediator attention).</param>
    /// <exception cref="MediatorDiTException">
    /// Guidance asks for more channels than the model has, or the fused full-attention core cannot run here or take the model's heads.
    /// </exception>
    public DeviceModelFunction(SiTModel model, Accelerator accelerator, ClassifierFreeGuidance? guidance = null,
        DevicePrecision precision = DevicePrecision.Fp32, FullAttentionCore fullAttention = FullAttentionCore.Tiles)
        : this(model, new KernelSet(accelerator), DeviceGemms.For(accelerator), guidance, precision, fullAttention: fullAttention)
    {
    }

    /// <summary>
    /// As the public constructor, with the kernels and the GEMM (owned and disposed by this function, also when the
    /// arguments are refused) given; <paramref name="operandsFromProducers"/> false rounds every bf16 product's operands
    /// in passes of their own (LinearProducts.OperandsFromProducers), the same bits.
    /// </summary>
    internal DeviceModelFunction(SiTModel model, KernelSet kernels, IDeviceGemm gemm, ClassifierFreeGuidance? guidance,
        DevicePrecision precision = DevicePrecision.Fp32, bool operandsFromProducers = true, FullAttentionCore fullAttention = FullAttentionCore.Tiles)
    {
        try
        {
            ArgumentNullException.ThrowIfNull(model);
            if (guidance is { IsActive: true }) guidance.ChannelsFor(model.Config.InChannels); // refuses more guided channels than the model has
            fullAttention.Check(kernels.Accelerator, precision);
            fullAttention.Check(model.Config);
        }
        catch
        {
            gemm.Dispose(); // refused before anything else was made
            throw;
        }
        Guidance = guidance is { IsActive: true } ? guidance : null;
        _gemm = gemm;
        _products = new LinearProducts(kernels, gemm, precision, operandsFromProducers);
        fullAttention.ApplyTo(_products.Attention);
        FullAttention = fullAttention;
        _model = new DeviceModel(model, kernels, _products);
    }

    /// <summary>The number format of the matrix products' inputs.</summary>
    public DevicePrecision Precision => _products.Precision;

    /// <summary>How full attention's core runs (mediator attention ignores it).</summary>
    public FullAttentionCore FullAttention { get; }

    /// <summary>The network's configuration.</summary>
    public ModelConfig Config => _model.Config;

    /// <summary>The guidance every call applies, or null for plain evaluations.</summary>
    public ClassifierFreeGuidance? Guidance { get; }

    /// <inheritdoc/>
    public int RowsPerSample => Guidance is null ? 1 : 2;

    /// <inheritdoc/>
    public Tensor Evaluate(Tensor x, ReadOnlySpan<float> t, ReadOnlySpan<int> y) =>
        Guidance is { } g ? _model.ForwardWithCfg(x, t, y, g.Scale, g.GuidedChannels) : _model.Forward(x, t, y);

    /// <summary>The network's plain forward, as <see cref="SiTModel.Forward"/>.</summary>
    public Tensor Forward(Tensor x, ReadOnlySpan<float> t, ReadOnlySpan<int> y) => _model.Forward(x, t, y);

    /// <summary>forward_with_cfg, as <see cref="SiTModel.ForwardWithCfg"/> (DiT's sampler calls it with its own scale).</summary>
    public Tensor ForwardWithCfg(Tensor x, ReadOnlySpan<float> t, ReadOnlySpan<int> y, float cfgScale, int? guidedChannels = 3) =>
        _model.ForwardWithCfg(x, t, y, cfgScale, guidedChannels);

    /// <inheritdoc/>
    /// <remarks>
    /// Each observed block synchronises the device and downloads its attention input (B*N, D); unobserved calls run
    /// as before. Views of this network (<see cref="WithGuidance"/>) share the observer.
    /// </remarks>
    public IDisposable ObserveAttentionInputs(Action<int, Tensor, int> onInput)
    {
        ArgumentNullException.ThrowIfNull(onInput);
        if (_model.AttentionInputObserver is not null) throw new InvalidOperationException("this device network is already observed.");
        _model.AttentionInputObserver = onInput;
        return new Detach(_model);
    }

    /// <summary>Removes the observer once.</summary>
    private sealed class Detach(DeviceModel model) : IDisposable
    {
        private bool _done;

        public void Dispose()
        {
            if (_done) return;
            _done = true;
            model.AttentionInputObserver = null;
        }
    }

    /// <summary>
    /// This network under <paramref name="guidance"/> without a second upload: a view that shares the device weights and
    /// activations (so it too runs one call at a time) and frees nothing itself. With no active guidance, a plain view.
    /// Views of one network may differ in guidance; each call runs as <see cref="Evaluate"/> of a function built with it.
    /// </summary>
    /// <exception cref="MediatorDiTException">Guidance asks for more channels than the model has.</exception>
    public IModelFunction WithGuidance(ClassifierFreeGuidance? guidance)
    {
        if (guidance is not { IsActive: true }) return new View(this, null);
        guidance.ChannelsFor(Config.InChannels); // refuses more guided channels than the model has
        return new View(this, guidance);
    }

    /// <summary>A guidance setting over a shared device network.</summary>
    private sealed class View(DeviceModelFunction network, ClassifierFreeGuidance? guidance) : IModelFunction, IAttentionInputSource
    {
        public int RowsPerSample => guidance is null ? 1 : 2;

        public IDisposable ObserveAttentionInputs(Action<int, Tensor, int> onInput) => network.ObserveAttentionInputs(onInput);

        public Tensor Evaluate(Tensor x, ReadOnlySpan<float> t, ReadOnlySpan<int> y) =>
            guidance is { } g ? network.ForwardWithCfg(x, t, y, g.Scale, g.GuidedChannels) : network.Forward(x, t, y);
    }

    /// <summary>The device network (tests read its saved activations).</summary>
    internal DeviceModel Model => _model;

    /// <summary>Full attention's core as products (its tile size may be changed between calls).</summary>
    internal AttentionProducts Attention => _products.Attention;

    /// <summary>Frees the weights and activations on the device.</summary>
    public void Dispose()
    {
        _model.Dispose();
        _products.Dispose();
        _gemm.Dispose();
    }
}
