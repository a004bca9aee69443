using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using MediatorDiT.Cuda.Performance;
using MediatorDiT.Cuda.Training;
using MediatorDiT.Diffusion;
using MediatorDiT.GpuCheck;
using MediatorDiT.IO;
using MediatorDiT.Models;
using MediatorDiT.Nn;
using MediatorDiT.Tensors;
using MediatorDiT.Tests.Cuda.Kernels;
using MediatorDiT.Tests.Training;
using MediatorDiT.Training;
using MediatorDiT.Training.Distributed;
using Xunit.Abstractions;

namespace MediatorDiT.Tests.Cuda.Training;

/// <summary>
/// The device training backend on ILGPU's CPU accelerator against <see cref="CpuTrainingBackend"/>: from the same
/// random weights and the same batches, three steps each; per step the loss and the gradient norm within 1e-4
/// relative, and after the steps every parameter, AdamW moment and EMA value within 1e-3 of max(|cpu|, the tensor's
/// rms) (the device adds in other orders: fp32 tree reductions, tiled products), step counts equal.
/// </summary>
[Collection(CpuAcceleratorCollection.Name)]
public class DeviceTrainingBackendTests(AcceleratorFixture device, ITestOutputHelper output)
{
    private const double StepTolerance = 1e-4, StateTolerance = 1e-3;

    internal static ModelConfig Config(int hidden, int depth, bool learnSigma) => new()
    {
        InputSize = 8, PatchSize = 2, InChannels = 2, HiddenSize = hidden, Depth = depth, NumHeads = 2, MlpRatio = 2.0, NumClasses = 3,
        LearnSigma = learnSigma,
    };

    /// <summary>A network, its EMA and optimiser with N(0, 0.2) weights from <paramref name="seed"/> (the EMA starts as a copy).</summary>
    internal static (TrainableNetwork Net, TrainableNetwork Ema, AdamW Opt) Run(ModelConfig config, int[] mediators, int seed) =>
        ParityChecks.Network(config, mediators, seed);

    /// <summary>The device check's batch (<see cref="DeviceWorkload.RandomBatch"/>) for ladder member <paramref name="member"/>, in <paramref name="shards"/> parts, clipped at <paramref name="clip"/>.</summary>
    internal static TrainingBatch Batch(ModelConfig config, int size, int shards, int member, double clip, int seed) =>
        DeviceWorkload.RandomBatch(config, size, seed) with { Member = member, Shards = shards, TotalShards = shards, GradClip = clip };

    private (double Loss, double Norm) Compare(ModelConfig config, int[] mediators, int batchSize, int shards, double clip, Func<int, int> memberAt)
    {
        var transport = new Transport();
        var (cpuNet, cpuEma, cpuOpt) = Run(config, mediators, 5);
        var (devNet, devEma, devOpt) = Run(config, mediators, 5);
        using var cpu = new CpuTrainingBackend(transport);
        using var dev = new DeviceTrainingBackend(device.Accelerator, transport);
        cpu.Attach(cpuNet, cpuEma, cpuOpt);
        dev.Attach(devNet, devEma, devOpt);
        double worstLoss = 0, worstNorm = 0;
        for (int step = 0; step < 3; step++)
        {
            var batch = Batch(config, batchSize, shards, memberAt(step), clip, 100 + step);
            var expected = cpu.Step(batch);
            var actual = dev.Step(batch);
            double lossDiff = Math.Abs(actual.Loss - expected.Loss) / Math.Abs(expected.Loss);
            double normDiff = Math.Abs(actual.GradNorm - expected.GradNorm) / expected.GradNorm;
            worstLoss = Math.Max(worstLoss, lossDiff);
            worstNorm = Math.Max(worstNorm, normDiff);
            Assert.True(lossDiff <= StepTolerance, $"step {step}: loss {actual.Loss:R}, the CPU's {expected.Loss:R}");
            Assert.True(normDiff <= StepTolerance, $"step {step}: gradient norm {actual.GradNorm:R}, the CPU's {expected.GradNorm:R}");
            if (clip > 0) Assert.True(expected.GradNorm > clip, $"step {step}: the norm {expected.GradNorm} does not reach the clip {clip}, so clipping is not tested");
        }
        dev.SyncToHost();
        double worstState = 0;
        for (int i = 0; i < cpuNet.Parameters.Count; i++)
        {
            string name = cpuNet.NameOf(cpuNet.Parameters[i]);
            worstState = Math.Max(worstState, AssertState(cpuNet.Parameters[i].Value.Span, devNet.Parameters[i].Value.Span, name));
            worstState = Math.Max(worstState, AssertState(cpuEma.Parameters[i].Value.Span, devEma.Parameters[i].Value.Span, "ema " + name));
        }
        var cpuState = cpuOpt.State;
        var devState = devOpt.State;
        for (int i = 0; i < cpuState.Count; i++)
        {
            Assert.Equal(cpuState[i].Step, devState[i].Step);
            if (cpuState[i].Step == 0) continue; // a ladder member's biases the steps never drew
            worstState = Math.Max(worstState, AssertClose(cpuState[i].ExpAvg.Span, devState[i].ExpAvg.Span, "exp_avg " + cpuState[i].Param.Name));
            worstState = Math.Max(worstState, AssertClose(cpuState[i].ExpAvgSq.Span, devState[i].ExpAvgSq.Span, "exp_avg_sq " + cpuState[i].Param.Name));
        }
        output.WriteLine($"largest relative differences: loss {worstLoss:E2}, gradient norm {worstNorm:E2}, state {worstState:E2} (of max(|cpu|, rms))");
        return (worstLoss, worstNorm);
    }

    /// <summary>
    /// A value or EMA tensor compared by <see cref="AssertClose"/>, except the key third of attn.qkv.bias: its gradient
    /// is zero in exact arithmetic (a shift shared by all keys leaves every softmax unchanged), so both backends hold
    /// rounding residue there, which AdamW's normalisation turns into steps of up to about lr (1 - b1) / sqrt(1 - b2)
    /// each. There the two may differ by the steps of both, 3 steps of 1e-3 x 3.17 each, and no more.
    /// </summary>
    private static double AssertState(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what)
    {
        if (!what.EndsWith("attn.qkv.bias")) return AssertClose(expected, actual, what);
        int d = expected.Length / 3;
        for (int j = d; j < 2 * d; j++)
            Assert.True(Math.Abs(actual[j] - expected[j]) <= 2 * 3 * 1e-3 * 3.17, $"{what}, key element {j}: device {actual[j]:R}, CPU {expected[j]:R}");
        var cpu = expected.ToArray();
        var dev = actual.ToArray();
        Array.Copy(cpu, d, dev, d, d);
        return AssertClose(cpu, dev, what);
    }

    /// <summary>Asserts |dev - cpu| &lt;= 1e-3 max(|cpu|, rms(cpu)) element by element; returns the largest such ratio.</summary>
    private static double AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double squares = 0;
        foreach (float e in expected) squares += (double)e * e;
        double rms = Math.Sqrt(squares / Math.Max(1, expected.Length));
        if (rms == 0)
        {
            Assert.Equal(expected.ToArray(), actual.ToArray());
            return 0;
        }
        double worst = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double ratio = Math.Abs((double)actual[i] - expected[i]) / Math.Max(Math.Abs((double)expected[i]), rms);
            if (!(ratio <= StateTolerance)) Assert.Fail($"{what}, element {i}: device {actual[i]:R}, CPU {expected[i]:R}");
            worst = Math.Max(worst, ratio);
        }
        return worst;
    }

    [Fact]
    public void FullAttention_MatchesTheCpuBackend() =>
        Compare(Config(16, 2, learnSigma: false), [], batchSize: 2, shards: 1, clip: 0, _ => 0);

    [Fact]
    public void MediatorAttentionWithLearnSigmaTwoPartsAndClipping_MatchesTheCpuBackend() =>
        Compare(Config(16, 1, learnSigma: true), [4], batchSize: 4, shards: 2, clip: 0.05, _ => 0);

    [Fact]
    public void SharedLadderWithAlternatingMembers_MatchesTheCpuBackend() =>
        Compare(Config(16, 1, learnSigma: false), [1, 4], batchSize: 2, shards: 1, clip: 0, step => step % 2);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void OneStepsGradients_MatchTheCpuModelsBackward(bool mediator)
    {
        // Without clipping the step leaves the gradients unscaled on both sides: every parameter's, layer by layer.
        var config = Config(16, 2, learnSigma: true);
        int[] mediators = mediator ? [4] : [];
        var transport = new Transport();
        var (cpuNet, cpuEma, cpuOpt) = Run(config, mediators, 9);
        var (devNet, devEma, devOpt) = Run(config, mediators, 9);
        using var cpu = new CpuTrainingBackend(transport);
        using var dev = new DeviceTrainingBackend(device.Accelerator, transport);
        cpu.Attach(cpuNet, cpuEma, cpuOpt);
        dev.Attach(devNet, devEma, devOpt);
        var batch = Batch(config, 2, 1, 0, 0, 21);
        cpu.Step(batch);
        dev.Step(batch);
        var state = dev.State!;
        double worst = 0;
        for (int i = 0; i < cpuNet.Parameters.Count; i++)
        {
            var p = cpuNet.Parameters[i];
            if (!p.Trainable) continue;
            var actual = new float[p.Grad!.Length];
            state.Slice(state.Gradients, state.IndexOf(devNet.Parameters[i])).CopyToCPU(actual);
            worst = Math.Max(worst, AssertClose(p.Grad.Span, actual, p.Name));
        }
        output.WriteLine($"largest gradient difference: {worst:E2} of max(|cpu|, rms)");
    }

    [Fact]
    public void AShardedBatchOfAnotherRankIsRefused()
    {
        var config = Config(16, 1, learnSigma: false);
        var (net, ema, opt) = Run(config, [], 5);
        using var dev = new DeviceTrainingBackend(device.Accelerator, new Transport());
        dev.Attach(net, ema, opt);
        var batch = Batch(config, 2, 1, 0, 0, 7) with { TotalShards = 2 };
        var e = Assert.Throws<MediatorDiTException>(() => dev.Step(batch));
        Assert.Equal("the batch holds 1 of 2 parts, but 1 ranks share it.", e.Message);
    }

    [Fact]
    public void TwoRanksGiveOneProcesssWeightsBitForBit()
    {
        // A global batch of 4 in 4 parts, 2 steps of a mediator network: one process against 2 thread ranks holding 2
        // parts each, every rank on an accelerator of its own (the parts' gradients go through the host, summed in
        // part order over the ranks).
        var config = Config(16, 1, learnSigma: false);
        var batches = Enumerable.Range(0, 2).Select(i => Batch(config, 4, 4, 0, 1.0, 30 + i)).ToArray();
        TrainableNetwork Train(ICommunicator? comm, Accelerator accelerator)
        {
            var (net, ema, opt) = Run(config, [4], 5);
            using var backend = new DeviceTrainingBackend(accelerator, new Transport(), communicator: comm);
            backend.Attach(net, ema, opt);
            foreach (var batch in batches)
                backend.Step(comm is null ? batch : batch.Part(2 * comm.Rank, 2));
            backend.SyncToHost();
            return net;
        }
        var single = Train(null, device.Accelerator);
        var ranks = MediatorDiT.Tests.Training.Distributed.ThreadRanks.Run(2, comm =>
        {
            using var context = ILGPU.Context.Create(b => b.CPU().Math(MathMode.Default));
            using var accelerator = context.CreateCPUAccelerator(0, CPUAcceleratorMode.Parallel);
            return Train(comm, accelerator);
        });
        foreach (var net in ranks)
            for (int i = 0; i < single.Parameters.Count; i++)
                Assert.Equal(single.Parameters[i].Value.Span.ToArray(), net.Parameters[i].Value.Span.ToArray());
    }

    [Fact]
    public void TrainerRunThroughTheDevice_WritesCheckpointsThatResumeAndMatchTheCpuRun()
    {
        string data = TrainerTests.MakeData();
        string dir = Path.GetDirectoryName(data)!;
        var config = TrainerTests.Tiny(data, 2) with
        {
            ModelConfig = new ModelConfig { HiddenSize = 16, Depth = 1, NumHeads = 2, PatchSize = 2, LearnSigma = false },
            CheckpointEvery = 2, GradClip = 1.0,
        };
        var options = new Trainer.Options { Backend = transport => new DeviceTrainingBackend(device.Accelerator, transport) };
        string deviceRun = Path.Combine(dir, "device"), cpuRun = Path.Combine(dir, "cpu");
        var first = new Trainer().Run(config, deviceRun, resume: false, options, CancellationToken.None);
        Assert.Equal(2, first.Step);
        var resumed = new Trainer().Run(config with { Steps = 3, CheckpointEvery = 3 }, deviceRun, resume: true, options, CancellationToken.None);
        Assert.Equal(3, resumed.Step);
        Assert.True(double.IsFinite(resumed.LastLoss));
        new Trainer().Run(config with { Steps = 3, CheckpointEvery = 3 }, cpuRun, resume: false, new Trainer.Options(), CancellationToken.None);

        // The resumed device run's checkpoint loads into a network and holds the CPU run's weights, moments and EMA.
        var latest = TrainingCheckpoint.Latest(deviceRun)!;
        Assert.Equal(TrainingCheckpoint.PathFor(deviceRun, 3), latest);
        var expected = SafeTensors.Read(TrainingCheckpoint.PathFor(cpuRun, 3)).Tensors;
        var actual = SafeTensors.Read(latest).Tensors;
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        double worst = 0;
        foreach (var (key, value) in expected)
        {
            var e = value.ToFloat().Span.ToArray();
            var a = actual[key].ToFloat().Span.ToArray();
            if (e.Length == 0) continue;
            worst = Math.Max(worst, AssertClose(e, a, key));
        }
        output.WriteLine($"checkpoint after 3 steps (2 + resume): largest relative difference {worst:E2}");
    }
}
