using MediatorDiT.Diffusion;
using MediatorDiT.IO;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Diffusion;

/// <summary>
/// The transport against SiT's own path code (transport.io.safetensors), every key of every path, to
/// 1e-5 * max(1, max|ref|) over the finite values. The file legitimately holds infinities (e.g. the
/// linear drift at t = 0, where d_alpha / alpha = 1 / 0); those must be reproduced with the same sign.
/// </summary>
public class TransportFixtureTests
{
    private const float Tol = 1e-5f;

    public static TheoryData<string, PathType> Paths => new()
    {
        { "linear", PathType.Linear },
        { "gvp", PathType.GVP },
        { "vp", PathType.VP },
    };

    private static readonly (string Key, DiffusionForm Form)[] Forms =
    [
        ("constant", DiffusionForm.Constant), ("SBDM", DiffusionForm.SBDM), ("sigma", DiffusionForm.Sigma),
        ("linear", DiffusionForm.Linear), ("decreasing", DiffusionForm.Decreasing),
    ];

    private static SafeTensorsFile Io() => SafeTensors.Read(Fixtures.PathOf("transport.io.safetensors"));

    [Theory]
    [MemberData(nameof(Paths))]
    public void PathSampleMatches(string name, PathType path)
    {
        var io = Io();
        var t = io.GetFloat("t").Span.ToArray();
        var (xt, ut) = new Transport(path).PathSample(t, io.GetFloat("x0"), io.GetFloat("x1"));
        AssertMatches(io.GetFloat($"{name}.xt"), xt.Span, $"{name}.xt");
        AssertMatches(io.GetFloat($"{name}.ut"), ut.Span, $"{name}.ut");
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void DriftMatches(string name, PathType path)
    {
        var io = Io();
        var t = io.GetFloat("t").Span.ToArray();
        var (mean, variance) = new Transport(path).ComputeDrift(io.GetFloat($"{name}.xt"), t);
        AssertMatches(io.GetFloat($"{name}.drift_mean"), mean.Span, $"{name}.drift_mean");
        AssertMatches(io.GetFloat($"{name}.drift_var"), variance, $"{name}.drift_var");
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void EveryDiffusionFormMatches(string name, PathType path)
    {
        var io = Io();
        var t = io.GetFloat("t").Span.ToArray();
        var transport = new Transport(path);
        foreach (var (key, form) in Forms)
        {
            var expected = io.GetFloat($"{name}.diffusion.{key}");
            var actual = transport.ComputeDiffusion(t, form);
            // The constant form is stored as the bare norm, shape [1].
            AssertMatches(expected, actual.AsSpan(0, expected.Length), $"{name}.diffusion.{key}");
            if (form == DiffusionForm.Constant) Assert.All(actual, w => Assert.Equal(expected.Span[0], w));
        }
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void ScoreAndNoiseFromVelocityMatch(string name, PathType path)
    {
        var io = Io();
        var t = io.GetFloat("t").Span.ToArray();
        var transport = new Transport(path);
        var velocity = io.GetFloat($"{name}.velocity");
        var xt = io.GetFloat($"{name}.xt");
        AssertMatches(io.GetFloat($"{name}.score_from_velocity"), transport.ScoreFromVelocity(velocity, xt, t).Span, $"{name}.score_from_velocity");
        AssertMatches(io.GetFloat($"{name}.noise_from_velocity"), transport.NoiseFromVelocity(velocity, xt, t).Span, $"{name}.noise_from_velocity");
    }

    [Fact]
    public void EveryFixtureKeyIsCovered()
    {
        var covered = new HashSet<string> { "t", "x0", "x1" };
        foreach (string name in new[] { "linear", "gvp", "vp" })
        {
            foreach (string key in new[] { "xt", "ut", "drift_mean", "drift_var", "velocity", "score_from_velocity", "noise_from_velocity" })
                covered.Add($"{name}.{key}");
            foreach (var (key, _) in Forms) covered.Add($"{name}.diffusion.{key}");
        }
        Assert.All(Io().Keys, k => Assert.Contains(k, covered));
    }

    /// <summary>Same infinities (and NaNs) in the same places; finite values within the tolerance.</summary>
    internal static void AssertMatches(Tensor expected, ReadOnlySpan<float> actual, string what) =>
        AssertMatches(expected.Span, actual, what);

    internal static void AssertMatches(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: {actual.Length} values, expected {expected.Length}.");
        float maxRef = 0, maxDiff = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            float e = expected[i], a = actual[i];
            if (!float.IsFinite(e))
            {
                Assert.True(e.Equals(a), $"{what}[{i}]: expected {e}, got {a}.");
                continue;
            }
            Assert.True(float.IsFinite(a), $"{what}[{i}]: expected {e}, got {a}.");
            maxRef = Math.Max(maxRef, Math.Abs(e));
            maxDiff = Math.Max(maxDiff, Math.Abs(e - a));
        }
        float bound = Tol * Math.Max(1f, maxRef);
        Assert.True(maxDiff <= bound, $"{what}: max |diff| {maxDiff:G4} exceeds {bound:G4} (max |ref| {maxRef:G4}).");
    }
}
