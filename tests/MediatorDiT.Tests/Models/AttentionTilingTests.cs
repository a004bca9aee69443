using MediatorDiT.Models;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Models;

/// <summary>
/// The streaming full attention gives the same forward and backward whatever the tile size, including
/// tiles that do not divide N; one tile of all N rows is the plain materialised computation.
/// </summary>
public class AttentionTilingTests
{
    private static (Tensor Out, Tensor DIn, float[][] Grads) Run(int tileRows, int batch, int tokens, int dim, int heads)
    {
        var attn = new FullAttention("attn.", dim, heads) { TileRows = tileRows };
        var rng = new RandomSource(42);
        foreach (var p in attn.Parameters) rng.FillGaussian(p.Value.Span, 0, 0.3f);
        var x = new Tensor(batch * tokens, dim);
        rng.FillGaussian(x.Span);
        var g = new Tensor(batch * tokens, dim);
        rng.FillGaussian(g.Span);
        var y = new Tensor(batch * tokens, dim);
        attn.Forward(x, y, batch);
        var dx = new Tensor(batch * tokens, dim);
        attn.Backward(g, dx);
        return (y, dx, attn.Parameters.Select(p => p.Grad!.Span.ToArray()).ToArray());
    }

    [Theory]
    [InlineData(7)]
    [InlineData(64)]
    public void TiledEqualsSingleTile(int tileRows)
    {
        const int batch = 2, tokens = 150, dim = 32, heads = 2;
        var plain = Run(tokens, batch, tokens, dim, heads);
        var tiled = Run(tileRows, batch, tokens, dim, heads);
        TestData.AssertClose(plain.Out.Span, tiled.Out.Span, 1e-5f, "forward");
        TestData.AssertClose(plain.DIn.Span, tiled.DIn.Span, 1e-4f, "d input");
        for (int i = 0; i < plain.Grads.Length; i++)
            TestData.AssertClose(plain.Grads[i], tiled.Grads[i], 1e-4f, $"grad {i}");
    }

    [Fact]
    public void AttentionMapRowsAreDistributions()
    {
        const int tokens = 100, dim = 16;
        var attn = new FullAttention("attn.", dim, 2);
        var rng = new RandomSource(1);
        foreach (var p in attn.Parameters) rng.FillGaussian(p.Value.Span, 0, 0.3f);
        var x = new Tensor(tokens, dim);
        rng.FillGaussian(x.Span);
        attn.Forward(x, new Tensor(tokens, dim), 1);
        var map = new float[tokens * tokens];
        attn.ComposedAttentionMap(0, 1, map);
        for (int r = 0; r < tokens; r++)
            Assert.Equal(1.0, map.AsSpan(r * tokens, tokens).ToArray().Sum(v => (double)v), 4);
    }
}
