using MediatorDiT.IO;
using MediatorDiT.Models;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Models;

/// <summary>
/// The attention maps given for analysis are the ones the network uses: applied to v (plus the depthwise
/// branch) and projected, they reproduce the official attention output; the mediator map is the product of
/// its two softmaxes and its rows are distributions.
/// </summary>
public class AttentionMapsTests
{
    private static (SiTModel Model, Tensor Input, Tensor Output) Fixture(string name)
    {
        var model = ModelFiles.Load(Fixtures.PathOf($"{name}.weights.safetensors"));
        var io = SafeTensors.Read(Fixtures.PathOf($"{name}.io.safetensors"));
        return (model, io.GetFloat("block0.attn.in"), io.GetFloat("block0.attn.out"));
    }

    /// <summary>Image b's tokens (N, D) of a (B, N, D) tensor.</summary>
    private static Tensor Image(Tensor all, int b)
    {
        int n = all.Dim(1), d = all.Dim(2);
        return new Tensor(all.Span.Slice(b * n * d, n * d).ToArray(), n, d);
    }

    /// <summary>y (N, out) = x (N, in) W^T + bias, plainly.</summary>
    private static double[,] Affine(Tensor x, Tensor weight, Tensor bias, int rowOffset, int outCount)
    {
        int n = x.Dim(0), inCount = x.Dim(1);
        var y = new double[n, outCount];
        for (int i = 0; i < n; i++)
        for (int o = 0; o < outCount; o++)
        {
            double s = bias.Span[rowOffset + o];
            for (int k = 0; k < inCount; k++) s += (double)x.Span[i * inCount + k] * weight.Span[(rowOffset + o) * inCount + k];
            y[i, o] = s;
        }
        return y;
    }

    /// <summary>proj(sum over heads of map_h v_h + extra): the attention output from the maps, in float64.</summary>
    private static float[] OutputFromMaps(Tensor maps, Tensor input, Tensor qkvW, Tensor qkvB, Tensor projW, Tensor projB, double[,]? extra)
    {
        int heads = maps.Dim(0), n = maps.Dim(1), d = input.Dim(1), hd = d / heads;
        var v = Affine(input, qkvW, qkvB, 2 * d, d);
        var o = new Tensor(n, d);
        for (int h = 0; h < heads; h++)
        for (int i = 0; i < n; i++)
        for (int c = 0; c < hd; c++)
        {
            double s = extra?[i, h * hd + c] ?? 0;
            for (int j = 0; j < n; j++) s += (double)maps.Span[(h * n + i) * n + j] * v[j, h * hd + c];
            o.Span[i * d + h * hd + c] = (float)s;
        }
        var y = Affine(o, projW, projB, 0, d);
        return Enumerable.Range(0, n * d).Select(k => (float)y[k / d, k % d]).ToArray();
    }

    [Fact]
    public void FullAttentionMapsReproduceTheOfficialAttentionOutput()
    {
        var (model, input, output) = Fixture("full_grid8");
        var attn = (FullAttention)model.Blocks[0].Attention;
        for (int b = 0; b < input.Dim(0); b++)
        {
            var x = Image(input, b);
            var maps = attn.ComputeAttentionProbabilities(x);
            Assert.Equal([model.Config.NumHeads, 64, 64], maps.Shape);
            var ours = OutputFromMaps(maps, x, attn.QkvWeight.Value, attn.QkvBias.Value, attn.ProjWeight.Value, attn.ProjBias.Value, null);
            TestData.AssertClose(Image(output, b).Span, ours, 1e-4f, $"image {b}");
        }
    }

    [Fact]
    public void ComposedMediatorMapIsTheProductOfItsSoftmaxesAndReproducesTheOfficialOutput()
    {
        var (model, input, output) = Fixture("mediator_grid8_m16");
        var attn = (MediatorAttention)model.Blocks[0].Attention;
        int heads = model.Config.NumHeads, n = attn.Mediators, N = model.Config.NumTokens, d = model.Config.HiddenSize, G = model.Config.GridSize;
        var x = Image(input, 1);
        var (a1, a2) = attn.ComputeMediatorAttention(x);
        var maps = attn.ComputeAttentionProbabilities(x);
        Assert.Equal([heads, n, N], a1.Shape);
        Assert.Equal([heads, N, n], a2.Shape);
        for (int h = 0; h < heads; h++)
        for (int i = 0; i < N; i++)
        {
            double rowSum = 0;
            for (int j = 0; j < N; j++)
            {
                double product = 0;
                for (int m = 0; m < n; m++) product += (double)a2.Span[(h * N + i) * n + m] * a1.Span[(h * n + m) * N + j];
                float composed = maps.Span[(h * N + i) * N + j];
                Assert.True(Math.Abs(product - composed) <= 1e-6, $"head {h} ({i}, {j}): {composed} vs {product}");
                rowSum += composed;
            }
            Assert.Equal(1.0, rowSum, 5);
        }

        // The depthwise 3x3 branch on v (zero padding), written out, completes the attention output.
        var v = Affine(x, attn.QkvWeight.Value, attn.QkvBias.Value, 2 * d, d);
        var w = attn.DwcWeight.Value;
        var dwc = new double[N, d];
        for (int r = 0; r < G; r++)
        for (int c = 0; c < G; c++)
        for (int ch = 0; ch < d; ch++)
        {
            double s = attn.DwcBias.Value.Span[ch];
            for (int dr = -1; dr <= 1; dr++)
            for (int dc = -1; dc <= 1; dc++)
            {
                int rr = r + dr, cc = c + dc;
                if (rr >= 0 && rr < G && cc >= 0 && cc < G) s += (double)w.Span[ch * 9 + (dr + 1) * 3 + dc + 1] * v[rr * G + cc, ch];
            }
            dwc[r * G + c, ch] = s;
        }
        var ours = OutputFromMaps(maps, x, attn.QkvWeight.Value, attn.QkvBias.Value, attn.ProjWeight.Value, attn.ProjBias.Value, dwc);
        TestData.AssertClose(Image(output, 1).Span, ours, 1e-4f, "attention output from the composed map");
    }
}
