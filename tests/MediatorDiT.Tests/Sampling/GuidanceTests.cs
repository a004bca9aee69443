using MediatorDiT.Diffusion;
using MediatorDiT.Evaluation;
using MediatorDiT.IO;
using MediatorDiT.Models;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Sampling;

/// <summary>
/// Classifier-free guidance: the official 3-channel forward_with_cfg and the all-channel variant, and a
/// guided SDE run against the official procedure (doubled state [z; z], labels [y; null], noise for
/// the whole doubled state, drift and score each from their own network call).
/// </summary>
public class GuidanceTests
{
    private static SiTModel LoadModel(string name)
    {
        var file = SafeTensors.Read(Fixtures.PathOf($"{name}.weights.safetensors"));
        var model = new SiTModel(ModelConfig.FromJson(file.Metadata["config"], name));
        StateDict.LoadInto(model, file.Tensors, strict: true, name);
        return model;
    }

    [Fact]
    public void OfficialGuidanceMatchesTheFixture()
    {
        var model = LoadModel("mediator_grid8_m16");
        var io = SafeTensors.Read(Fixtures.PathOf("mediator_grid8_m16.io.safetensors"));
        var guided = new GuidedNetworkFunction(model, ClassifierFreeGuidance.Official(4.0f));
        var output = guided.Evaluate(io.GetFloat("cfg.x"), io.GetFloat("cfg.t").Span, io.GetInt64("cfg.y").Select(v => (int)v).ToArray());
        TestData.AssertClose(io.GetFloat("cfg.out").Span, output.Span, 1e-4f, "cfg.out");
    }

    [Fact]
    public void AllChannelGuidanceGuidesEveryChannelOfBothHalves()
    {
        var model = LoadModel("mediator_grid4_m4");
        var x = new Tensor(TestData.Gaussian(4 * 4 * 8 * 8, 3), 4, 4, 8, 8);
        float[] t = [0.2f, 0.7f, 0.2f, 0.7f];
        int[] y = [1, 5, 10, 10];
        const float scale = 2.5f;
        var output = new GuidedNetworkFunction(model, ClassifierFreeGuidance.AllChannels(scale)).Evaluate(x, t, y);

        int per = 4 * 8 * 8;
        var doubled = new Tensor(x.Shape);
        x.Span[..(2 * per)].CopyTo(doubled.Span);
        x.Span[..(2 * per)].CopyTo(doubled.Span[(2 * per)..]);
        var raw = model.Forward(doubled, t, y);
        for (int s = 0; s < 2; s++)
        for (int i = 0; i < per; i++)
        {
            float cond = raw.Span[s * per + i], uncond = raw.Span[(s + 2) * per + i];
            float expected = uncond + scale * (cond - uncond);
            Assert.Equal(expected, output.Span[s * per + i], 5);
            Assert.Equal(expected, output.Span[(s + 2) * per + i], 5);
        }
    }

    [Fact]
    public void GuidedSdeRunFollowsTheOfficialDoubledBatch()
    {
        var model = LoadModel("mediator_grid4_m4");
        var guidance = ClassifierFreeGuidance.Official(3.0f);
        var ladder = ModelLadder.FromModel(model, guidance);
        Assert.Equal(2, ladder.RowsPerSample);
        var transport = new Transport();
        var options = new SdeSamplerOptions { NumSteps = 4, DiffusionForm = DiffusionForm.Sigma };
        var z = new Tensor(TestData.Gaussian(2 * 4 * 8 * 8, 5), 2, 4, 8, 8);
        int[] y = [3, 8];
        var result = new SdeSampler(transport, options).Sample(ladder, z, y, new GaussianNoiseSource(9), recordTrajectory: true);

        // The official procedure, written with the public transport API and two calls per drift.
        int per = 4 * 8 * 8;
        var x = new Tensor(4, 4, 8, 8);
        z.Span.CopyTo(x.Span);
        z.Span.CopyTo(x.Span[(2 * per)..]);
        int[] labels = [3, 8, 10, 10];
        var random = new RandomSource(9);
        var grid = TimeGrid.Linspace(0, 0.96, 4);
        float dt = grid[1] - grid[0];
        Tensor SdeDrift(Tensor state, float time)
        {
            float[] ts = [time, time, time, time];
            var velocity = model.ForwardWithCfg(state, ts, labels, guidance.Scale, 3);
            var score = transport.ScoreFromVelocity(model.ForwardWithCfg(state, ts, labels, guidance.Scale, 3), state, ts);
            float w = transport.ComputeDiffusion(ts, DiffusionForm.Sigma)[0];
            var drift = new Tensor(state.Shape);
            for (int i = 0; i < drift.Length; i++) drift.Span[i] = velocity.Span[i] + w * score.Span[i];
            return drift;
        }
        for (int step = 0; step < 3; step++)
        {
            var w = new float[x.Length];
            random.FillGaussian(w);
            var drift = SdeDrift(x, grid[step]);
            float g = transport.ComputeDiffusion([grid[step]], DiffusionForm.Sigma)[0];
            var next = new Tensor(x.Shape);
            for (int i = 0; i < x.Length; i++)
                next.Span[i] = x.Span[i] + drift.Span[i] * dt + MathF.Sqrt(2 * g) * (w[i] * MathF.Sqrt(dt));
            TestData.AssertClose(next.Span, result.Trajectory[step].Span, 1e-5f, $"doubled state after step {step}");
            x = next;
        }
        var last = SdeDrift(x, 0.96f);
        for (int i = 0; i < x.Length; i++) x.Span[i] += last.Span[i] * 0.04f;
        TestData.AssertClose(x.Span[..(2 * per)], result.Samples.Span, 1e-5f, "guided samples (conditional half)");
        Assert.Equal([2, 4, 8, 8], result.Samples.Shape);
        Assert.Equal(4, result.Usage.Evaluations);
        Assert.Equal(4 * 2 * FlopCounter.Count(model.Config).PerImage, result.Usage.FlopsPerImage[0], 1);
    }

    [Theory]
    [InlineData(1, null, 1)]
    [InlineData(3, null, 3)]
    [InlineData(4, 3, 3)]
    public void TheDefaultChannelsFollowTheModel(int inChannels, int? expectedSetting, int expectedGuided)
    {
        // The official first-3 rule is for 4-channel latents; pixel models (1 or 3 channels) guide every channel.
        Assert.Equal(expectedSetting, ClassifierFreeGuidance.DefaultGuidedChannels(inChannels));
        var guidance = ClassifierFreeGuidance.ForModel(2f, inChannels);
        Assert.Equal(2f, guidance.Scale);
        Assert.Equal(expectedGuided, guidance.ChannelsFor(inChannels));

        var model = new SiTModel(new ModelConfig
        {
            InputSize = 8, PatchSize = 2, InChannels = inChannels, HiddenSize = 32, Depth = 1, NumHeads = 2, NumClasses = 3,
            MediatorNum = 4, Attention = AttentionKind.Mediator,
        });
        Assert.Equal(2, ModelLadder.FromModel(model, guidance).RowsPerSample);
        // The official variant does not fit a 1-channel model; the message names the way out.
        if (inChannels < 3)
            Assert.Contains("use ClassifierFreeGuidance.AllChannels", Assert.Throws<MediatorDiTException>(() =>
                ModelLadder.FromModel(model, ClassifierFreeGuidance.Official(2f))).Message);
    }

    [Fact]
    public void GuidanceSettingsAreValidated()
    {
        Assert.Contains("cfg scale must be a finite number >= 1", Assert.Throws<MediatorDiTException>(() => new ClassifierFreeGuidance(0.5f)).Message);
        Assert.Contains("got 0.5", Assert.Throws<MediatorDiTException>(() => ClassifierFreeGuidance.Official(0.5f)).Message);
        Assert.Contains("got NaN", Assert.Throws<MediatorDiTException>(() => ClassifierFreeGuidance.AllChannels(float.NaN)).Message);
        Assert.Contains("guided channel count", Assert.Throws<MediatorDiTException>(() => new ClassifierFreeGuidance(2, 0)).Message);
        var model = LoadModel("mediator_grid4_m4");
        Assert.Contains("guidance is set for 6 channels", Assert.Throws<MediatorDiTException>(() => ModelLadder.FromModel(model, new ClassifierFreeGuidance(2, 6))).Message);
        // Scale 1 means no guidance, as in the official scripts: no doubled batch, no doubled cost.
        var plain = ModelLadder.FromModel(model, ClassifierFreeGuidance.Official(1));
        Assert.Equal(1, plain.RowsPerSample);
        Assert.Equal(FlopCounter.Count(model.Config).PerImage, plain.FlopsPerImage[0]);
    }

    [Fact]
    public void ChooseIsTheOneRuleForScaleAndChannels()
    {
        Assert.Null(ClassifierFreeGuidance.Choose(1f, true, 4));
        Assert.Equal(ClassifierFreeGuidance.AllChannels(2f), ClassifierFreeGuidance.Choose(2f, true, 4));
        Assert.Equal(ClassifierFreeGuidance.Official(2f), ClassifierFreeGuidance.Choose(2f, false, 4));
        Assert.Equal(ClassifierFreeGuidance.Official(2f), ClassifierFreeGuidance.Choose(2f, null, 4));
        Assert.Equal(ClassifierFreeGuidance.AllChannels(2f), ClassifierFreeGuidance.Choose(2f, null, 1));
        Assert.Equal("guidance on the first 3 channels was asked for but the model has only 1; guide all of them.",
            Assert.Throws<MediatorDiTException>(() => ClassifierFreeGuidance.Choose(2f, false, 1)).Message);
        Assert.Equal(3, ClassifierFreeGuidance.Official(2f).Recorded);
        Assert.Equal("all", ClassifierFreeGuidance.AllChannels(2f).Recorded);
    }
}
