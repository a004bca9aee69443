using MediatorDiT.IO;
using MediatorDiT.Models;
using MediatorDiT.Tests.Models;
using MediatorDiT.Training;

namespace MediatorDiT.Tests.Training;

public class AdamWTests
{
    [Theory]
    [MemberData(nameof(FixtureParityTests.SiTCases), MemberType = typeof(FixtureParityTests))]
    public void OneStepMatchesTorchAdamW(string name)
    {
        // The fixture's adamw1.* are the parameters after torch.optim.AdamW(lr 1e-4, wd 0) on grad.*.
        var model = FixtureParityTests.LoadModel($"{name}.weights.safetensors");
        var io = SafeTensors.Read(Fixtures.PathOf($"{name}.io.safetensors"));
        foreach (var p in model.Parameters.Where(p => p.Trainable))
            io.GetFloat("grad." + p.Name).Span.CopyTo(p.Grad!.Span);
        var opt = new AdamW(model, lr: 1e-4, weightDecay: 0);
        opt.Update();
        foreach (var p in model.Parameters.Where(p => p.Trainable))
        {
            var expected = io.GetFloat("adamw1." + p.Name).Span;
            var actual = p.Value.Span;
            for (int i = 0; i < expected.Length; i++)
                Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-6 * Math.Max(1, Math.Abs(expected[i])),
                    $"{p.Name}[{i}]: {actual[i]} vs {expected[i]}");
        }
        Assert.All(opt.State, s => Assert.Equal(1, s.Step));
    }

    [Fact]
    public void WeightDecayIsDecoupled()
    {
        var config = new ModelConfig { InputSize = 4, PatchSize = 2, HiddenSize = 8, Depth = 1, NumHeads = 2, NumClasses = 2, MediatorNum = 1 };
        var model = new SiTModel(config);
        var p = model["blocks.0.mlp.fc1.weight"];
        p.Value.Span.Fill(2f);
        // Zero gradient: Adam's step is 0/(0+eps) = 0, so only the decay acts.
        var opt = new AdamW(model, lr: 0.1, weightDecay: 0.5);
        opt.Update();
        Assert.Equal(2f * (1 - 0.1f * 0.5f), p.Value.Span[0], 6);
    }

    [Fact]
    public void EmaMovesTowardTheModel()
    {
        var config = new ModelConfig { InputSize = 4, PatchSize = 2, HiddenSize = 8, Depth = 1, NumHeads = 2, NumClasses = 2, MediatorNum = 1 };
        var model = new SiTModel(config);
        var ema = new SiTModel(config);
        model["blocks.0.mlp.fc1.weight"].Value.Span.Fill(1f);
        ema["blocks.0.mlp.fc1.weight"].Value.Span.Fill(0f);
        Ema.Update(ema, model, 0.9);
        Assert.Equal(0.1f, ema["blocks.0.mlp.fc1.weight"].Value.Span[3], 6);
        Ema.Update(ema, model, 0.9);
        Assert.Equal(0.19f, ema["blocks.0.mlp.fc1.weight"].Value.Span[3], 6);
    }
}
