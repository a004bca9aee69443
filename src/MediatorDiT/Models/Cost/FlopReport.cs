using System.Globalization;
using System.Text;

namespace MediatorDiT.Models;

/// <summary>One line of a <see cref="FlopReport"/>: a part of the network and its FLOPs for one image.</summary>
public sealed record FlopComponent(string Name, double Flops)
{
    /// <summary><see cref="Flops"/> in billions.</summary>
    public double GFlops => Flops / 1e9;
}

/// <summary>
/// FLOPs of one forward pass for one image, broken down by component. One FLOP is one
/// multiply-accumulate, as in the DiT and SiT papers; docs/FLOPS.md says what is counted.
/// </summary>
public sealed record FlopReport(ModelConfig Config, IReadOnlyList<FlopComponent> Components)
{
    /// <summary>What the convention leaves out; printed under the table so the total is not misread.</summary>
    public const string NotCounted =
        "not counted: LayerNorm, softmax, SiLU/GELU, modulate, gates, residual/bias/position additions, "
        + "attention scaling, sinusoid, label lookup, unpatchify";

    /// <summary>FLOPs for one image (batch 1, no guidance).</summary>
    public double Total => Components.Sum(c => c.Flops);

    /// <summary>Same as <see cref="Total"/>; named for call sites that multiply by a batch.</summary>
    public double PerImage => Total;

    /// <summary><see cref="Total"/> in billions.</summary>
    public double GFlops => Total / 1e9;

    /// <summary>
    /// FLOPs of one network call on <paramref name="batch"/> images. Classifier-free guidance runs the
    /// conditional and unconditional halves in one doubled batch, so it costs twice as much.
    /// </summary>
    public double ForBatch(int batch, bool cfg = false)
    {
        if (batch < 0) throw new MediatorDiTException($"batch size must not be negative, got {batch}.");
        return PerImage * batch * (cfg ? 2 : 1);
    }

    /// <summary>An aligned plain-text table: component, GFLOPs, share of the total, then the total.</summary>
    public string ToTable()
    {
        var inv = CultureInfo.InvariantCulture;
        double total = Total;
        string Percent(double flops) => (total > 0 ? 100 * flops / total : 0).ToString("F2", inv) + "%";
        string G(double flops) => (flops / 1e9).ToString("F4", inv);

        const string nameHead = "component", gHead = "GFLOPs", pHead = "percent";
        int nameW = Math.Max(nameHead.Length, Components.Select(c => c.Name.Length).DefaultIfEmpty(0).Max());
        nameW = Math.Max(nameW, "total".Length);
        int gW = Math.Max(gHead.Length, Components.Select(c => G(c.Flops).Length).Append(G(total).Length).Max());
        int pW = Math.Max(pHead.Length, "100.00%".Length);

        var sb = new StringBuilder();
        sb.Append("FLOPs per image (1 multiply-accumulate = 1 FLOP): ").AppendLine(Describe(Config));
        void Row(string a, string b, string c) =>
            sb.Append(a.PadRight(nameW)).Append("  ").Append(b.PadLeft(gW)).Append("  ").AppendLine(c.PadLeft(pW));
        string rule = new string('-', nameW) + "  " + new string('-', gW) + "  " + new string('-', pW);

        Row(nameHead, gHead, pHead);
        sb.AppendLine(rule);
        foreach (var c in Components) Row(c.Name, G(c.Flops), Percent(c.Flops));
        sb.AppendLine(rule);
        Row("total", G(total), Percent(total));
        sb.AppendLine(NotCounted);
        return sb.ToString();
    }

    private static string Describe(ModelConfig c)
    {
        string attention = AttentionKinds.For(c).Title(c);
        return $"{c.Family}, {c.InputSize}x{c.InputSize}x{c.InChannels} input, patch {c.PatchSize} "
               + $"({c.NumTokens} tokens), hidden {c.HiddenSize}, depth {c.Depth}, heads {c.NumHeads}, {attention}";
    }
}
