using MediatorDiT.Evaluation;
using MediatorDiT.Models;

namespace MediatorDiT.Tests.Models;

public class FlopCounterTests
{
    // DiT/SiT papers (full attention) and the attention-mediator paper (SiT-S/2), 256 px, 1000 classes.
    [Theory]
    [InlineData("SiT-S/2", 0, 6.06, 0.02)]
    [InlineData("SiT-B/2", 0, 23.01, 0.02)]
    [InlineData("SiT-XL/2", 0, 118.64, 0.05)]
    [InlineData("SiT-S/2", 4, 5.49, 0.02)]
    [InlineData("SiT-S/2", 16, 5.55, 0.02)]
    [InlineData("SiT-S/2", 64, 5.78, 0.02)]
    public void MatchesPublishedGFlops(string model, int mediators, double published, double tolerance)
    {
        var report = FlopCounter.Count(ModelRegistry.Get(model, imageSize: 256, mediators: mediators));
        Assert.InRange(report.GFlops, published - tolerance, published + tolerance);
    }

    [Fact]
    public void DiTXL2At512MatchesPublishedGFlops()
    {
        // The DiT paper gives 524.6 GFLOPs for XL/2 on 64x64 latents.
        var report = FlopCounter.Count(ModelRegistry.Get("DiT-XL/2", imageSize: 512));
        Assert.InRange(report.GFlops, 524.6 - 0.1, 524.6 + 0.1);
    }

    [Fact]
    public void FullAttentionProductsAreQuadraticAndMediatorProductsLinearInTokens()
    {
        // 256 px: 32x32 latent, 256 tokens; 1024 px: 128x128 latent, 4096 tokens (16x).
        double Products(int imageSize, int mediators) =>
            FlopCounter.AttentionProductFlopsPerBlock(ModelRegistry.Get("SiT-S/2", imageSize, mediators));
        double Module(int imageSize, int mediators) =>
            FlopCounter.AttentionFlopsPerBlock(ModelRegistry.Get("SiT-S/2", imageSize, mediators));

        Assert.Equal(256.0, Products(1024, 0) / Products(256, 0), 12);
        Assert.Equal(16.0, Products(1024, 16) / Products(256, 16), 12);
        // Pooling, bias resize and depthwise conv are per token as well, so the whole module stays linear.
        Assert.Equal(16.0, Module(1024, 16) / Module(256, 16), 12);
        Assert.True(Module(1024, 0) / Module(256, 0) > 16.0 * 4);
    }

    [Theory]
    [InlineData("SiT-S/2", 256, 0)]
    [InlineData("SiT-S/2", 256, 16)]
    [InlineData("SiT-B/4", 512, 9)]
    [InlineData("DiT-XL/2", 512, 0)]
    [InlineData("SiT-L/8", 256, 64)]
    public void ComponentsSumToTotal(string model, int imageSize, int mediators)
    {
        var report = FlopCounter.Count(ModelRegistry.Get(model, imageSize, mediators));
        double sum = 0;
        foreach (var c in report.Components)
        {
            Assert.True(c.Flops >= 0, c.Name);
            sum += c.Flops;
        }
        Assert.Equal(sum, report.Total);
        Assert.Equal(report.Total, report.PerImage);
        Assert.Equal(report.Total / 1e9, report.GFlops, 12);
        Assert.Equal(report.Components.Count, report.Components.Select(c => c.Name).Distinct().Count());
    }

    [Fact]
    public void SiTS2WithMediatorsAt512MatchesHandCount()
    {
        // 512 px -> 64x64x4 latent, patch 2 -> 32x32 = 1024 tokens; S: D 384, 12 blocks, 6 heads; 16 mediators.
        const double N = 1024, D = 384, Blocks = 12, Heads = 6, M = 16;
        double perBlock =
            N * (3 * D * D + D * D + 2 * 4 * D * D) // qkv, proj, MLP: 12 D^2 weights applied per token
            + D * 6 * D                            // adaLN on the conditioning vector
            + 4 * M * N * D                        // T K^T, A V, Q T^T, A V_m
            + N * D * 9                            // 3x3 depthwise conv of V
            + N * D                                // 8x8 average-pool windows tile the grid once
            + 2 * Heads * M * N * 4;               // two bias maps resized 7x7 -> 32x32, 4 taps each
        double outside =
            N * (4 * 2 * 2) * D                    // patch embedding
            + 256 * D + D * D                      // timestep MLP
            + 2 * D * D + N * D * (2 * 2 * 8);     // final adaLN and linear to p p 2C
        double expected = Blocks * perBlock + outside;

        var report = FlopCounter.Count(ModelRegistry.Get("SiT-S/2", imageSize: 512, mediators: 16));
        Assert.Equal(expected, report.Total, 1.0);
        // Same model with full attention spends 2 N^2 D per block on the products instead.
        var full = FlopCounter.Count(ModelRegistry.Get("SiT-S/2", imageSize: 512));
        double fullExpected = expected - Blocks * (4 * M * N * D + 9 * N * D + N * D + 8 * Heads * M * N)
                              + Blocks * 2 * N * N * D;
        Assert.Equal(fullExpected, full.Total, 1.0);
    }

    [Fact]
    public void PoolingCountsOverlappingWindows()
    {
        // 16 -> 3: PyTorch windows [0,6), [5,11), [10,16), six rows each, so 18 x 18 reads per channel.
        Assert.Equal(18.0 * 18.0, FlopCounter.AdaptivePoolAccumulates(16, 3));
        Assert.Equal(16.0 * 16.0, FlopCounter.AdaptivePoolAccumulates(16, 4));
        var report = FlopCounter.Count(ModelRegistry.Get("SiT-S/2", 256, mediators: 9));
        Assert.Equal(12 * 18.0 * 18.0 * 384, report.Components.Single(c => c.Name == "mediator pooling").Flops);
    }

    [Fact]
    public void ListsTheComponentsOfEachAttentionKind()
    {
        var full = FlopCounter.Count(ModelRegistry.Get("SiT-S/2", 256)).Components.Select(c => c.Name).ToList();
        var med = FlopCounter.Count(ModelRegistry.Get("SiT-S/2", 256, 16)).Components.Select(c => c.Name).ToList();
        string[] common =
        [
            "patch embedding", "timestep + label embedding", "adaLN modulation", "qkv projection",
            "output projection", "MLP", "final layer",
        ];
        foreach (var name in common)
        {
            Assert.Contains(name, full);
            Assert.Contains(name, med);
        }
        Assert.Contains("attention Q K^T", full);
        Assert.DoesNotContain("mediator pooling", full);
        foreach (var name in new[]
                 {
                     "mediator pooling", "bias interpolation", "mediator attention T K^T", "mediator values A V",
                     "query attention Q T^T", "query output A V_m", "depthwise conv of V",
                 })
            Assert.Contains(name, med);
        Assert.DoesNotContain("attention Q K^T", med);
    }

    [Fact]
    public void ForBatchScalesAndGuidanceDoubles()
    {
        var report = FlopCounter.Count(ModelRegistry.Get("SiT-S/2", 256, 16));
        Assert.Equal(8 * report.PerImage, report.ForBatch(8));
        Assert.Equal(16 * report.PerImage, report.ForBatch(8, cfg: true));
        Assert.Throws<MediatorDiTException>(() => report.ForBatch(-1));
    }

    [Fact]
    public void TableListsEveryComponentAndTheTotal()
    {
        var report = FlopCounter.Count(ModelRegistry.Get("SiT-S/2", 256, 16));
        string table = report.ToTable();
        var lines = table.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).ToList();
        foreach (var c in report.Components) Assert.Contains(lines, l => l.StartsWith(c.Name + " "));
        var totalLine = Assert.Single(lines, l => l.StartsWith("total "));
        Assert.Contains(report.GFlops.ToString("F4", System.Globalization.CultureInfo.InvariantCulture), totalLine);
        Assert.EndsWith("100.00%", totalLine);
        // Rows are aligned: every table row has the same width.
        var rows = lines.Skip(1).Take(report.Components.Count + 4).ToList();
        Assert.Single(rows.Select(r => r.Length).Distinct());
        Assert.Contains("not counted", table);
    }

    [Fact]
    public void RejectsInvalidConfigs()
    {
        var bad = new ModelConfig { InputSize = 32, PatchSize = 2, HiddenSize = 384, NumHeads = 6, Depth = 12,
            Attention = AttentionKind.Mediator, MediatorNum = 10 };
        Assert.Throws<MediatorDiTException>(() => FlopCounter.Count(bad));
        Assert.Throws<ArgumentNullException>(() => FlopCounter.Count(null!));
    }
}
