using MediatorDiT.IO;
using MediatorDiT.IO.Pickle;

namespace MediatorDiT.Tests.IO;

public class TorchFileFixtureTests
{
    private static void AssertSameTensors(IReadOnlyDictionary<string, StoredTensor> expected, IReadOnlyDictionary<string, StoredTensor> actual)
    {
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
        foreach (var (key, want) in expected)
        {
            StoredTensor got = actual[key];
            Assert.Equal(want.DType, got.DType);
            Assert.Equal(want.Shape, got.Shape);
            Assert.True(want.Bytes.Span.SequenceEqual(got.Bytes.Span), $"bytes of '{key}' differ");
        }
    }

    [Theory]
    [InlineData("mediator_grid8_m16")]
    [InlineData("mediator_grid4_m4")]
    [InlineData("full_grid8")]
    public void CheckpointModelAndEmaEqualTheSafeTensorsWeightsBitForBit(string name)
    {
        var weights = SafeTensors.Read(Fixtures.PathOf($"{name}.weights.safetensors")).Tensors;
        string checkpoint = Fixtures.PathOf($"{name}.checkpoint.pt");

        AssertSameTensors(weights, TorchFile.LoadStateDict(checkpoint, "model"));
        AssertSameTensors(weights, TorchFile.LoadStateDict(checkpoint, "ema"));
        AssertSameTensors(weights, TorchFile.LoadStateDict(checkpoint)); // default: ema
        AssertSameTensors(weights, StateDict.Load(checkpoint));
    }

    [Fact]
    public void CheckpointStateDictKeepsTheOfficialOrder()
    {
        var weights = SafeTensors.Read(Fixtures.PathOf("mediator_grid8_m16.weights.safetensors")).Tensors;
        var state = TorchFile.LoadStateDict(Fixtures.PathOf("mediator_grid8_m16.checkpoint.pt"));
        Assert.Equal(weights.Keys, state.Keys);
    }

    [Fact]
    public void BareStateDictEqualsItsSafeTensorsTwin()
    {
        var weights = SafeTensors.Read(Fixtures.PathOf("dit_model.weights.safetensors")).Tensors;
        string path = Fixtures.PathOf("dit_model.pt");
        AssertSameTensors(weights, TorchFile.LoadStateDict(path));
        AssertSameTensors(weights, StateDict.Load(path));
    }

    [Theory]
    [InlineData("mediator_grid8_m16", 48)]
    [InlineData("mediator_grid4_m4", 30)]
    [InlineData("full_grid8", 32)]
    public void OptimizerStateIsReadableAndMatchesTheFirstAdamWStep(string name, int parameterCount)
    {
        var root = Assert.IsType<Dictionary<object, object?>>(TorchFile.Load(Fixtures.PathOf($"{name}.checkpoint.pt")));
        Assert.Equal(["model", "ema", "opt", "args"], root.Keys);
        Assert.Same(root["model"], root["ema"]); // torch.save memoised the identical dict

        var opt = Assert.IsType<Dictionary<object, object?>>(root["opt"]);
        var group = Assert.IsType<Dictionary<object, object?>>(Assert.Single(Assert.IsType<List<object?>>(opt["param_groups"])));
        Assert.Equal(1e-4, Assert.IsType<double>(group["lr"]));
        Assert.Equal(new object?[] { 0.9, 0.999 }, Assert.IsType<object?[]>(group["betas"]));
        Assert.Equal(1e-8, group["eps"]);
        Assert.Equal(0L, group["weight_decay"]);
        Assert.Equal(false, group["amsgrad"]);
        Assert.Null(group["foreach"]);
        Assert.Equal(Enumerable.Range(0, parameterCount).Select(i => (object?)(long)i), Assert.IsType<List<object?>>(group["params"]));

        // Parameter i of the optimizer is the i-th state-dict entry; pos_embed (0) is frozen, so has no state.
        var stateDict = Assert.IsType<Dictionary<object, object?>>(root["model"]);
        var names = stateDict.Keys.Cast<string>().ToList();
        var state = Assert.IsType<Dictionary<object, object?>>(opt["state"]);
        Assert.Equal(Enumerable.Range(1, parameterCount - 1).Select(i => (object)(long)i), state.Keys);

        var io = SafeTensors.Read(Fixtures.PathOf($"{name}.io.safetensors"));
        foreach (long index in new long[] { 1, parameterCount - 1 })
        {
            var moments = Assert.IsType<Dictionary<object, object?>>(state[index]);
            var step = Assert.IsType<StoredTensor>(moments["step"]);
            Assert.Empty(step.Shape); // a zero-dim tensor
            Assert.Equal(1f, step.ToFloat().Span[0]);

            float[] grad = io.GetFloat("grad." + names[(int)index]).Span.ToArray();
            var expAvg = Assert.IsType<StoredTensor>(moments["exp_avg"]);
            var expAvgSq = Assert.IsType<StoredTensor>(moments["exp_avg_sq"]);
            Assert.Equal(((StoredTensor)stateDict[names[(int)index]]!).Shape, expAvg.Shape);
            float[] m = expAvg.ToFloat().Span.ToArray(), v = expAvgSq.ToFloat().Span.ToArray();
            for (int i = 0; i < grad.Length; i++)
            {
                // After one AdamW step from zero: m = (1 - 0.9) g, v = (1 - 0.999) g².
                float wantM = 0.1f * grad[i], wantV = 0.001f * grad[i] * grad[i];
                Assert.Equal(wantM, m[i], 1e-6f * Math.Max(1f, Math.Abs(wantM)));
                Assert.Equal(wantV, v[i], 1e-6f * Math.Max(1f, wantV));
            }
        }
    }

    [Theory]
    [InlineData("mediator_grid8_m16", 16L, 128L)]
    [InlineData("mediator_grid4_m4", 4L, 64L)]
    [InlineData("full_grid8", 16L, 128L)]
    public void ArgsIsAnInertNamespace(string name, long mediators, long imageSize)
    {
        var root = Assert.IsType<Dictionary<object, object?>>(TorchFile.Load(Fixtures.PathOf($"{name}.checkpoint.pt")));
        var args = Assert.IsType<PickledObject>(root["args"]);
        Assert.Equal(new PickleGlobal("argparse", "Namespace"), args.Type);
        Assert.Equal("SiT-custom", args.GetAttribute("model"));
        Assert.Equal(mediators, args.GetAttribute("mediator_num"));
        Assert.Equal(imageSize, args.GetAttribute("image_size"));
        Assert.Empty(args.Args); // NEWOBJ with no arguments; the attributes come from BUILD
    }

    [Fact]
    public void UnknownEntryKeyListsThePresentKeys()
    {
        string path = Fixtures.PathOf("full_grid8.checkpoint.pt");
        var error = Assert.Throws<MediatorDiTException>(() => TorchFile.LoadStateDict(path, "ema_model"));
        Assert.Contains(path, error.Message);
        Assert.Contains("'ema_model'", error.Message);
        foreach (string key in new[] { "'model'", "'ema'", "'opt'", "'args'" }) Assert.Contains(key, error.Message);
    }

    [Fact]
    public void NonStateDictEntryIsAClearError()
    {
        string path = Fixtures.PathOf("full_grid8.checkpoint.pt");
        var error = Assert.Throws<MediatorDiTException>(() => TorchFile.LoadStateDict(path, "args"));
        Assert.Contains("'args'", error.Message);
        Assert.Contains("argparse.Namespace", error.Message);
    }

    [Fact]
    public void KeyOnABareStateDictIsAClearError()
    {
        string path = Fixtures.PathOf("dit_model.pt");
        var error = Assert.Throws<MediatorDiTException>(() => TorchFile.LoadStateDict(path, "ema"));
        Assert.Contains(path, error.Message);
        Assert.Contains("bare state dict", error.Message);
    }
}
