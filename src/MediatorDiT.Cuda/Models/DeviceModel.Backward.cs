using ILGPU;
using ILGPU.Runtime;
using MediatorDiT.Cuda.Blas;
using MediatorDiT.Cuda.Kernels;
using MediatorDiT.Models;
using MediatorDiT.Tensors;

namespace MediatorDiT.Cuda.Models;

/// <summary>
/// The training pass on the device: the forward over inputs a trainer uploaded into the activations, and the
/// backward of every layer in reverse order (SiTModel.Backward's order), adding each parameter's gradient into the
/// gradient views as the CPU layers accumulate theirs. The linear layers' weight and input gradients are matrix
/// products (<see cref="LinearProducts"/>, at its precision); everything else is a backward kernel, in fp32.
/// </summary>
internal sealed partial class DeviceModel
{
    private DeviceBackwardBuffers? _backward;

    /// <summary>The gradient buffers for a batch of <paramref name="batch"/>, allocated at the first call of that size.</summary>
    internal DeviceBackwardBuffers BackwardBuffersFor(int batch)
    {
        if (_gradients is null) throw new InvalidOperationException("this device model was built for sampling; it has no gradients.");
        if (_backward?.Batch != batch)
        {
            _backward?.Dispose();
            _backward = new DeviceBackwardBuffers(Config, batch, _kernels.Accelerator, _products.OperandsFromProducers,
                bf16Products: _products.Precision == DevicePrecision.Bf16);
        }
        return _backward;
    }

    /// <summary>Throws the CPU model's sentence when a label is not a row of the label table.</summary>
    internal void CheckLabels(ReadOnlySpan<int> y)
    {
        foreach (int label in y)
            if ((uint)label >= (uint)_weights.LabelRows)
                throw new MediatorDiTException(
                    $"class label {label} is out of range: the model has {Config.NumClasses} classes (0..{Config.NumClasses - 1}, {Config.NumClasses} = null label).");
    }

    /// <summary>The forward over a.Input, a.Frequencies (UploadTimes) and a.Labels (uploaded by the caller), keeping every block's activations; the prediction in a.Output.</summary>
    internal void TrainingForward(DeviceActivations a)
    {
        if (!a.PerBlock) throw new InvalidOperationException("a training forward needs every block's activations.");
        Network(a, a.Batch);
    }

    /// <summary>
    /// Back-propagates g.Output = dL/d(prediction) (B, returned channels, S, S) through the last
    /// <see cref="TrainingForward"/>, adding every trainable parameter's gradient into the gradient views (zero them
    /// first). The input's gradient is not formed (nothing reads it). <paramref name="stageDone"/>, when given, is
    /// called as each stage's parameter gradients are queued complete, so their exchange can start while the rest
    /// runs: 0 after the final layer, 1 + j after block depth - 1 - j, depth + 1 after the embeddings.
    /// </summary>
    internal void Backward(DeviceActivations a, DeviceBackwardBuffers g, Action<int>? stageDone = null)
    {
        var grads = _gradients ?? throw new InvalidOperationException("this device model was built for sampling; it has no gradients.");
        var cfg = Config;
        var k = _kernels;
        var w = _weights;
        int b = a.Batch, d = cfg.HiddenSize, n = cfg.NumTokens, rows = b * n, p = cfg.PatchSize, hidden = cfg.MlpHidden;
        int outWidth = p * p * cfg.OutChannels, patchWidth = cfg.InChannels * p * p;

        // Final layer: tokens = Linear(adaLN(x; shift, scale)), (shift, scale) = Linear(siluC) (B, 2D).
        using (k.Stage("backward: final layer"))
        {
            k.UnpatchifyBackward(g.Output, g.TokensOut, b, cfg.OutChannels, cfg.GridSize, p, cfg.ReturnedChannels);
            LinearBackward(a.H, w.FinalLinearWeight, g.TokensOut, grads.FinalLinearWeight, grads.FinalLinearBias, g.H, rows, d, outWidth, false);
            k.Zero(g.FinalModulation);
            k.AdaLayerNormBackward(g.H, a.Normalized, Column(a.FinalModulation, 1, d), a.Stats, Column(g.FinalModulation, 0, d),
                Column(g.FinalModulation, 1, d), g.X, d, n, 2 * d, accumulate: false);
            LinearBackward(a.SiluCondition, w.FinalAdaWeight, g.FinalModulation, grads.FinalAdaWeight, grads.FinalAdaBias, g.SiluCondition, b, d, 2 * d, false);
        }

        stageDone?.Invoke(0);
        for (int i = w.Blocks.Count - 1; i >= 0; i--)
        {
            BlockBackward(a.Block(i), a.Stream(i), w.Blocks[i], grads.Blocks[i], a.SiluCondition, g, b);
            stageDone?.Invoke(w.Blocks.Count - i);
        }

        // Embeddings: c = t_emb + y_emb, siluC = SiLU(c); t_emb = W2 SiLU(W0 freq + b0) + b2; tokens = patches W^T + b + pos.
        using (k.Stage("backward: embeddings"))
        {
            k.SiluBackward(a.Condition, g.SiluCondition, g.Condition);
            LinearBackward(a.TimeActivated, w.TimeW2, g.Condition, grads.TimeW2, grads.TimeB2, g.TimeActivated, b, d, d, false);
            k.SiluBackward(a.TimeHidden, g.TimeActivated, g.TimeActivated);
            LinearBackward(a.Frequencies, w.TimeW0, g.TimeActivated, grads.TimeW0, grads.TimeB0, default, b, TimestepEmbedder.FrequencySize, d, false);
            k.LabelTableGradient(a.Labels, g.Condition, grads.LabelTable, d);
            LinearBackward(a.Patches, w.PatchWeight, g.X, grads.PatchWeight, grads.PatchBias, default, rows, patchWidth, d, false);
        }
        stageDone?.Invoke(w.Blocks.Count + 1);
    }

    /// <summary>
    /// One block's backward (SiTBlock.Backward) from its activations and its input x (B*N, D): g.X holds dL/d(block
    /// output) on entry, dL/d(block input) on exit; dL/d(siluC) added to g.SiluCondition.
    /// </summary>
    private void BlockBackward(DeviceBlockActivations s, ArrayView<float> x, BlockWeights w, BlockWeights grads, ArrayView<float> siluC, DeviceBackwardBuffers g, int b)
    {
        var cfg = Config;
        var k = _kernels;
        int d = cfg.HiddenSize, n = cfg.NumTokens, rows = b * n, hidden = cfg.MlpHidden, stride = 6 * d;
        const string norms = "backward: norms and gated residuals";
        using (k.Stage(norms)) k.Zero(g.Modulation);

        // MLP branch: x_out = xMid + gate2 * fc2(gelu(fc1(h2))).
        // proj's, fc1's and fc2's bias gradients are summed by chunks of rows where their output gradients are made (in
        // bf16 as those kernels write them, which then store them in bf16 only), so their products skip the bias.
        using (k.Stage(norms))
            GatedResidualBackward(g.X, s.Mlp, w.Fc2Bias, Column(s.Modulation, 5, d), Column(g.Modulation, 5, d), g, grads.Fc2Bias, d, n, stride);
        // In bf16 fc2's input gradient is stored in bf16 by its product (g.GeluUpstreamBf16), fc1's output already was.
        bool bf16 = _products.Precision == DevicePrecision.Bf16;
        using (k.Stage("backward: fc2"))
        {
            if (bf16) _products.BackwardToBf16InputGradient(s.Fc2Input, w.Fc2Weight, g.BranchGradient, grads.Fc2Weight, default, g.GeluUpstreamBf16, rows, hidden, d);
            else _products.Backward(s.Fc2Input, w.Fc2Weight, g.BranchGradient, grads.Fc2Weight, default, g.Hidden, rows, hidden, d, false);
        }
        using (k.Stage("backward: gelu"))
        {
            if (g.HiddenGradient.HasBf16)
                k.GeluBackwardBf16WithBiasGradient(s.Fc1Bf16, w.Fc1Bias, g.GeluUpstreamBf16, g.HiddenBf16, g.ColumnPartials, grads.Fc1Bias);
            else
            {
                if (bf16) k.GeluBackward(s.Fc1Bf16, w.Fc1Bias, g.GeluUpstreamBf16, g.Hidden);
                else k.GeluBackward(s.Fc1, w.Fc1Bias, g.Hidden, g.Hidden);
                k.ColumnSumsByChunks(g.Hidden, g.ColumnPartials, grads.Fc1Bias, hidden);
            }
        }
        using (k.Stage("backward: fc1"))
            _products.Backward(s.Fc1Input, w.Fc1Weight, g.HiddenGradient, grads.Fc1Weight, default, g.H, rows, d, hidden, false);
        using (k.Stage(norms))
        {
            // dL/dxMid = dL/dx (the residual path) + the MLP branch's LayerNorm input gradient.
            k.AdaLayerNormBackward(g.H, s.XMid, Column(s.Modulation, 4, d), s.Stats2, Column(g.Modulation, 3, d), Column(g.Modulation, 4, d),
                g.XMid, d, n, stride, accumulate: true, residual: g.X, xhatFromInput: true);

            // Attention branch: xMid = xIn + gate1 * proj(attention(qkv(h1))).
            GatedResidualBackward(g.XMid, s.AttentionOut, w.ProjBias, Column(s.Modulation, 2, d), Column(g.Modulation, 2, d), g, grads.ProjBias, d, n, stride);
        }
        using (k.Stage("backward: proj"))
            _products.Backward(s.ProjInput, w.ProjWeight, g.BranchGradient, grads.ProjWeight, default, g.Heads, rows, d, d, false);
        if (w.Mediator)
            using (k.Stage("backward: mediator attention core")) MediatorBackward(s, w, grads, g, b);
        else
            using (k.Stage("backward: full attention core"))
                _products.Attention.FullBackward(s.Qkv, w.QkvBias, s.Heads, g.Heads, s.Lse, g.Delta, g.Qkv, Geometry(b), g.QkvBf16, s.QkvHeadsBf16,
                    s.Probabilities16);
        using (k.Stage("backward: qkv"))
            _products.Backward(s.QkvInput, w.QkvWeight, w.Mediator ? g.Qkv : g.QkvGradient, grads.QkvWeight, grads.QkvBias, g.H, rows, d, 3 * d, false);
        using (k.Stage(norms))
        {
            k.AdaLayerNormBackward(g.H, x, Column(s.Modulation, 1, d), s.Stats1, Column(g.Modulation, 0, d), Column(g.Modulation, 1, d),
                g.X, d, n, stride, accumulate: true, residual: g.XMid, xhatFromInput: true);
        }

        // adaLN projection: mod = siluC W^T + b.
        using (k.Stage("backward: adaLN modulation")) LinearBackward(siluC, w.AdaWeight, g.Modulation, grads.AdaWeight, grads.AdaBias, g.SiluCondition, b, d, stride, true);
    }

    /// <summary>Mediator attention's core backward from g.Heads: dqkv into g.Qkv, the depthwise conv's and the position biases' gradients added.</summary>
    private void MediatorBackward(DeviceBlockActivations s, BlockWeights w, BlockWeights grads, DeviceBackwardBuffers g, int b)
    {
        var cfg = Config;
        var k = _kernels;
        int d = cfg.HiddenSize;
        // The core reads the depthwise weight (D, 1, 3, 3) as taps (9, D).
        k.Transpose(w.DwcWeight, g.Taps, d, 9);
        _products.Attention.MediatorBackward(new MediatorBackwardViews(s.Qkv, s.MediatorTokens, s.A1, s.A2, s.Vm, g.Taps, g.Heads, g.Qkv, g.S1, g.S2,
            g.TapsPerImage, g.Vm, g.T), w.QkvBias, Geometry(b));
        k.DepthwiseParameterGradients(g.TapsPerImage, grads.DwcWeight, grads.DwcBias, d, b);
        k.MediatorBiasGradients(g.S1, g.S2, g.Bias1, g.Bias2, g.Resized,
            new MediatorBiasGradientViews(grads.AnBias, grads.NaBias, grads.AhBias, grads.AwBias, grads.HaBias, grads.WaBias), g.ResizeTaps!,
            b, cfg.NumHeads, cfg.GridSize, cfg.MediatorGrid);
    }

    /// <summary>Nn.Linear.Backward on the device (<see cref="LinearProducts.Backward"/>) for operands without bf16 copies.</summary>
    private void LinearBackward(ArrayView<float> x, ArrayView<float> weight, ArrayView<float> dy, ArrayView<float> dWeight, ArrayView<float> dBias,
        ArrayView<float> dx, int rows, int inFeatures, int outFeatures, bool accumulateDx) =>
        _products.Backward(x, weight, dy, dWeight, dBias, dx, rows, inFeatures, outFeatures, accumulateDx);

    /// <summary>
    /// The gated residual's backward (the branch before its bias) into g.Branch, or only into its bf16 copy when it
    /// has one, and the branch's bias gradient dBias += the column sums of dBranch.
    /// </summary>
    private void GatedResidualBackward(ArrayView<float> dy, ArrayView<float> branch, ArrayView<float> bias, ArrayView<float> gate, ArrayView<float> dGate,
        DeviceBackwardBuffers g, ArrayView<float> dBias, int d, int rowsPerImage, int modStride)
    {
        if (g.BranchGradient.HasBf16)
        {
            _kernels.GatedResidualBackwardBf16WithBiasGradient(dy, branch, bias, gate, dGate, g.BranchBf16, g.ColumnPartials, dBias, d, rowsPerImage, modStride);
            return;
        }
        _kernels.GatedResidualBackward(dy, branch, bias, gate, dGate, g.Branch, d, rowsPerImage, modStride);
        _kernels.ColumnSumsByChunks(g.Branch, g.ColumnPartials, dBias, d);
    }

    /// <summary>Column block <paramref name="index"/> (B, D) of a (B, K D) modulation, as a view starting at its first column (rows K D apart).</summary>
    private static ArrayView<float> Column(ArrayView<float> modulation, int index, int d) => modulation.SubView((long)index * d, modulation.Length - (long)index * d);
}
