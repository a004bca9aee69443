using MediatorDiT.Evaluation;
using MediatorDiT.IO;
using MediatorDiT.Models;

namespace MediatorDiT.Tests.Evaluation;

public class LayerRedundancyTests
{
    [Theory]
    [InlineData("mediator_grid8_m16")]
    [InlineData("full_grid8")]
    public void PerImageValuesAreTheHeadMeansOfEachImagesMaps(string name)
    {
        var model = ModelFiles.Load(Fixtures.PathOf($"{name}.weights.safetensors"));
        var input = SafeTensors.Read(Fixtures.PathOf($"{name}.io.safetensors")).GetFloat("block0.attn.in"); // (3, 64, 64)
        int images = input.Dim(0), n = input.Dim(1), d = input.Dim(2);
        var attention = (IAttentionMaps)model.Blocks[0].Attention;
        var values = LayerRedundancy.PerImage(attention, input.Reshape(images * n, d), images, n);
        Assert.Equal(images, values.Length);
        for (int b = 0; b < images; b++)
        {
            var one = new MediatorDiT.Tensors.Tensor(input.Span.Slice(b * n * d, n * d).ToArray(), n, d);
            var maps = attention.ComputeAttentionProbabilities(one);
            int heads = maps.Dim(0);
            double expected = Enumerable.Range(0, heads)
                .Average(h => AttentionRedundancy.ReferenceMeanPairwiseJensenShannon(maps.Span.Slice(h * n * n, n * n), n, n));
            Assert.True(Math.Abs(expected - values[b]) <= 1e-12 * expected, $"image {b}: {values[b]:R} vs {expected:R}");
        }
        Assert.NotEqual(values[0], values[1]);
    }
}
