using System.Runtime.Intrinsics;
using MediatorDiT.IO;
using MediatorDiT.Models;
using MediatorDiT.Nn;
using MediatorDiT.Tensors;
using MediatorDiT.Training;

// Runs the vectorised kernels on fixed seeded inputs (odd sizes, tails) and writes every result to the
// safetensors file named by the first argument; prints whether Vector512 was accelerated. The tests run it
// with and without 512-bit vectors and compare the files.
if (args.Length != 1)
{
    Console.Error.WriteLine("usage: MediatorDiT.SimdCheck OUT.safetensors");
    return 2;
}
var results = new Dictionary<string, StoredTensor>();
void Keep(string name, ReadOnlySpan<float> values) => results[name] = StoredTensor.FromFloat(values, [values.Length]);
float[] Gaussian(int n, ulong seed)
{
    var v = new float[n];
    new RandomSource(seed).FillGaussian(v);
    return v;
}

// GEMM, all four transpose cases, sizes that leave tails in every blocking dimension.
foreach (var (m, n, k) in new[] { (37, 45, 29), (130, 70, 400), (5, 300, 17) })
foreach (bool ta in new[] { false, true })
foreach (bool tb in new[] { false, true })
{
    var a = Gaussian(m * k, 1);
    var b = Gaussian(k * n, 2);
    var c = Gaussian(m * n, 3);
    Gemm.Sgemm(ta, tb, m, n, k, 0.7f, a, ta ? m : k, b, tb ? k : n, 0.5f, c, n);
    Keep($"gemm.{m}x{n}x{k}.{(ta ? "T" : "N")}{(tb ? "T" : "N")}", c);
}

// Row kernels with tails (cols not a multiple of 8 or 16) and a bias.
foreach (int cols in new[] { 5, 16, 37, 256 })
{
    var row = Gaussian(cols, 4);
    var bias = Gaussian(cols, 5);
    float lse = SoftmaxRows.Forward(row, bias);
    Keep($"softmax.{cols}", [.. row, lse]);
    var dp = Gaussian(cols, 6);
    SoftmaxRows.Backward(row, dp);
    Keep($"softmax_backward.{cols}", dp);
    var x = Gaussian(cols, 7);
    var y = new float[cols];
    Gelu.Forward(x, y);
    Keep($"gelu.{cols}", y);
    var dx = Gaussian(cols, 13);
    Gelu.Backward(x, dx, dx);
    Keep($"gelu_backward.{cols}", dx);
}

// A product with B packed once (the MLP's weights), on row blocks, as the fused MLP chain runs it.
{
    const int m = 130, n = 70, k = 400;
    var a = Gaussian(m * k, 14);
    var w = Gaussian(n * k, 15);
    var c = Gaussian(m * n, 16);
    var packed = new PackedMatrix();
    Gemm.TryPack(packed, true, n, k, w, k, 64);
    for (int r0 = 0; r0 < m; r0 += 64)
    {
        int rows = Math.Min(64, m - r0);
        Gemm.Sgemm(false, true, rows, n, k, 0.7f, a.AsSpan(r0 * k, rows * k), k, packed, w, k, 0.5f, c.AsSpan(r0 * n, rows * n), n);
    }
    Keep("gemm.packed.130x70x400.NT", c);
}

// Depthwise conv on a 5x7 grid with 37 channels.
{
    const int h = 5, w = 7, ch = 37;
    var x = Gaussian(h * w * ch, 8);
    var taps = Gaussian(9 * ch, 9);
    var bias = Gaussian(ch, 10);
    var y = new float[h * w * ch];
    DepthwiseConv3x3.Forward(x, ch, taps, bias, y, h, w, ch, accumulate: false);
    Keep("dwc.forward", y);
    var dx = new float[x.Length];
    var dTaps = new float[9 * ch];
    var dBias = new float[ch];
    DepthwiseConv3x3.BackwardAccumulate(x, ch, taps, Gaussian(y.Length, 11), dx, dTaps, dBias, h, w, ch);
    Keep("dwc.dx", dx);
    Keep("dwc.dtaps", dTaps);
    Keep("dwc.dbias", dBias);
}

// Both attentions forward and backward on 2 images: a 6x6 grid, 48 channels in 3 heads, 4 mediators; and the
// fused mediator core at 16 mediators (one 512-bit vector of logits per query row) on an 8x8 grid, hd 32.
foreach (var (key, attn, tokens, dim, seed) in new (string, IAttention, int, int, ulong)[]
{
    ("full", new FullAttention("f.", 48, 3), 36, 48, 12),
    ("mediator", new MediatorAttention("m.", 48, 3, 6, 4), 36, 48, 12),
    ("mediator16", new MediatorAttention("m16.", 64, 2, 8, 16), 64, 64, 17),
})
{
    var rng = new RandomSource(seed);
    foreach (var p in attn.Parameters) rng.FillGaussian(p.Value.Span, 0, 0.3f);
    var x = new Tensor(2 * tokens, dim);
    rng.FillGaussian(x.Span);
    var y = new Tensor(2 * tokens, dim);
    attn.Forward(x, y, 2);
    Keep($"{key}.out", y.Span);
    var g = new Tensor(2 * tokens, dim);
    rng.FillGaussian(g.Span);
    var dx = new Tensor(2 * tokens, dim);
    attn.Backward(g, dx);
    Keep($"{key}.dx", dx.Span);
    foreach (var p in attn.Parameters) Keep($"{key}.grad.{p.Name}", p.Grad!.Span);
}

// A small SiT with mediators forward and backward on 2 images (adaLN, gated residuals, GELU, the bias maps),
// guided sampling's combination, and three AdamW steps on seeded values and gradients.
{
    var config = new ModelConfig { InputSize = 8, PatchSize = 2, InChannels = 3, HiddenSize = 40, Depth = 2, NumHeads = 2,
        NumClasses = 3, MediatorNum = 4 };
    var model = new SiTModel(config) { KeepActivations = true };
    var rng = new RandomSource(21);
    foreach (var p in model.Parameters.Where(p => p.Trainable)) rng.FillGaussian(p.Value.Span, 0, 0.2f);
    var x = new Tensor(2, 3, 8, 8);
    rng.FillGaussian(x.Span);
    var output = model.Forward(x, [0.3f, 0.8f], [1, 2]);
    Keep("sit.out", output.Span);
    var g = new Tensor(output.Shape);
    rng.FillGaussian(g.Span);
    model.ZeroGrad();
    Keep("sit.dx", model.Backward(g).Span);
    foreach (var p in model.Parameters.Where(p => p.Trainable)) Keep($"sit.grad.{p.Name}", p.Grad!.Span);
    Keep("sit.cfg", model.ForwardWithCfg(x, [0.5f, 0.5f], [1, 3], 4f).Span);

    var ps = new[] { new Parameter("a", [37]), new Parameter("b", [16, 33]) };
    foreach (var p in ps)
    {
        rng.FillGaussian(p.Value.Span);
        rng.FillGaussian(p.Grad!.Span, 0, 0.1f);
    }
    var opt = new AdamW(ps, lr: 1e-2, weightDecay: 0.05);
    for (int step = 0; step < 3; step++) opt.Update();
    foreach (var p in ps) Keep($"adamw.{p.Name}", p.Value.Span);
}

SafeTensors.Write(args[0], results);
Console.WriteLine($"Vector512 {(Vector512.IsHardwareAccelerated ? "on" : "off")}, Vector256 {(Vector256.IsHardwareAccelerated ? "on" : "off")}");
return 0;
