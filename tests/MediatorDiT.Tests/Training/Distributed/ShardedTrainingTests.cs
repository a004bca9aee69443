using MediatorDiT.Data;
using MediatorDiT.Diffusion;
using MediatorDiT.IO;
using MediatorDiT.Tensors;
using MediatorDiT.Training;
using MediatorDiT.Training.Distributed;

namespace MediatorDiT.Tests.Training.Distributed;

/// <summary>
/// Data-parallel training with ranks as threads of this process: the same weights as one process, bit for bit, for
/// any number of ranks dividing grad_shards; resume with another number of ranks; refusals and the weight check.
/// (Tests/Training/Distributed/MpiTrainingTests runs the same through mpiexec.)
/// </summary>
public class ShardedTrainingTests
{
    private static readonly ComputeContext OneThread = ComputeContext.WithThreads(1);

    private static TrainConfig Config(string data, long steps, bool ladder = false) => TrainerTests.Tiny(data, steps) with
    {
        BatchSize = 8, Mediators = ladder ? [1, 4] : [4], ClassDropout = 0.25,
    };

    private static Trainer.Result Train(TrainConfig config, string run, bool resume, ICommunicator? comm = null) =>
        new Trainer().Run(config, run, resume, new Trainer.Options { Compute = OneThread, Communicator = comm }, CancellationToken.None);

    private static Dictionary<string, float[]> Tensors(string file) =>
        SafeTensors.Read(file).Tensors.ToDictionary(kv => kv.Key, kv => kv.Value.ToFloat().Span.ToArray());

    private static void AssertSameCheckpoints(string expectedRun, string actualRun)
    {
        var expected = TrainingCheckpoint.List(expectedRun);
        Assert.NotEmpty(expected);
        Assert.Equal(expected.Select(c => c.Step), TrainingCheckpoint.List(actualRun).Select(c => c.Step));
        foreach (var (step, path) in expected)
        {
            var a = Tensors(path);
            var b = Tensors(TrainingCheckpoint.PathFor(actualRun, step));
            Assert.Equal(a.Keys.Order(), b.Keys.Order());
            foreach (var key in a.Keys) Assert.True(a[key].AsSpan().SequenceEqual(b[key]), $"step {step}: {key} differs");
            Assert.Equal(SafeTensors.Read(path).Metadata["rng"], SafeTensors.Read(TrainingCheckpoint.PathFor(actualRun, step)).Metadata["rng"]);
        }
    }

    private static double[] Losses(string run) => File.ReadAllLines(Path.Combine(run, "metrics.jsonl"))
        .Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("loss").GetDouble()).ToArray();

    [Theory]
    [InlineData(2, false)]
    [InlineData(4, true)]
    public void RanksTrainTheWeightsOfOneProcessBitForBit(int ranks, bool ladder)
    {
        string data = TrainerTests.MakeData();
        string dir = Path.GetDirectoryName(data)!;
        var config = Config(data, 12, ladder);
        Train(config, Path.Combine(dir, "one"), false);
        var results = ThreadRanks.Run(ranks, comm => Train(config, Path.Combine(dir, "many"), false, comm));
        AssertSameCheckpoints(Path.Combine(dir, "one"), Path.Combine(dir, "many"));
        Assert.Equal(Losses(Path.Combine(dir, "one")), Losses(Path.Combine(dir, "many")));
        Assert.All(results, r => Assert.Equal(12, r.Step));
        Assert.NotEmpty(results[0].ExportedWeights);
        Assert.All(results.Skip(1), r => Assert.Empty(r.ExportedWeights));
        Assert.Equal(8, TrainConfig.FromJson(File.ReadAllText(Path.Combine(dir, "many", "config.json")), "config").GradShards);
    }

    [Fact]
    public void AResumeMayUseAnotherNumberOfRanks()
    {
        string data = TrainerTests.MakeData();
        string dir = Path.GetDirectoryName(data)!;
        Train(Config(data, 12), Path.Combine(dir, "straight"), false);
        // 2 ranks, then 1 process.
        ThreadRanks.Run(2, comm => Train(Config(data, 5), Path.Combine(dir, "two-one"), false, comm));
        Train(Config(data, 12), Path.Combine(dir, "two-one"), true);
        // 1 process, then 4 ranks.
        Train(Config(data, 5), Path.Combine(dir, "one-four"), false);
        ThreadRanks.Run(4, comm => Train(Config(data, 12), Path.Combine(dir, "one-four"), true, comm));
        var straight = Tensors(TrainingCheckpoint.Latest(Path.Combine(dir, "straight"))!);
        foreach (string run in new[] { "two-one", "one-four" })
        {
            var resumed = Tensors(TrainingCheckpoint.Latest(Path.Combine(dir, run))!);
            foreach (var key in straight.Keys) Assert.True(straight[key].AsSpan().SequenceEqual(resumed[key]), $"{run}: {key} differs");
            Assert.Equal(Losses(Path.Combine(dir, "straight")), Losses(Path.Combine(dir, run)));
        }
    }

    [Fact]
    public void GradShardsDefaultToADivisorOfTheBatch()
    {
        Assert.Equal(8, new TrainConfig { BatchSize = 64 }.EffectiveGradShards());
        Assert.Equal(4, new TrainConfig { BatchSize = 4 }.EffectiveGradShards());
        Assert.Equal(6, new TrainConfig { BatchSize = 12 }.EffectiveGradShards());
        Assert.Equal(8, new TrainConfig { BatchSize = 64, GradAccum = 4 }.EffectiveGradShards());
        Assert.Equal(16, new TrainConfig { BatchSize = 64, GradAccum = 16 }.EffectiveGradShards());
        Assert.Equal(3, new TrainConfig { BatchSize = 64, GradShards = 3 }.EffectiveGradShards());
        var e = Assert.Throws<MediatorDiTException>(() => new TrainConfig { BatchSize = 64, GradShards = 3 }.Validate());
        Assert.Equal("grad_shards 3 must divide batch_size 64 and be a multiple of grad_accum 1.", e.Message);
        Assert.Throws<MediatorDiTException>(() => new TrainConfig { BatchSize = 64, GradAccum = 4, GradShards = 2 }.Validate());
        Assert.Contains("grad_shards", TrainConfig.ResumeInvariantFields);
    }

    [Fact]
    public void RanksThatDoNotDivideTheShardsAreRefusedOnce()
    {
        string data = TrainerTests.MakeData();
        var errors = new Exception?[3];
        ThreadRanks.Run(3, comm =>
        {
            try { Train(Config(data, 2), Path.Combine(Path.GetDirectoryName(data)!, "three"), false, comm); }
            catch (Exception e) { errors[comm.Rank] = e; }
            return 0;
        });
        var first = Assert.IsType<RunStoppedException>(errors[0]);
        Assert.False(first.Quiet);
        Assert.Equal("grad_shards 8 cannot be shared by 3 ranks; use a number of ranks that divides 8 (or start a new run with grad_shards a multiple of 3; it cannot change on resume).",
            first.Message);
        Assert.All(errors.Skip(1), e => Assert.True(Assert.IsType<RunStoppedException>(e).Quiet));
    }

    /// <summary>A CPU backend whose rank nudges one weight after a step: the ranks' weights no longer agree.</summary>
    private sealed class DriftingBackend(Transport transport, ICommunicator comm, bool drift) : ITrainingBackend
    {
        private readonly CpuTrainingBackend _cpu = new(transport, comm);
        private TrainableNetwork? _network;
        private int _steps;
        public string Name => "drifting CPU";
        public void Attach(TrainableNetwork network, TrainableNetwork ema, AdamW optimizer)
        {
            _network = network;
            _cpu.Attach(network, ema, optimizer);
        }
        public TrainingStepResult Step(TrainingBatch batch)
        {
            var result = _cpu.Step(batch);
            if (drift && ++_steps == 3) _network!.Parameters[0].Value.Span[0] += 1e-3f;
            return result;
        }
        public void SyncToHost() { }
        public void Dispose() { }
    }

    [Fact]
    public void WeightsThatDisagreeStopEveryRankWithOneSentence()
    {
        string data = TrainerTests.MakeData();
        string run = Path.Combine(Path.GetDirectoryName(data)!, "drift");
        var errors = new Exception?[2];
        ThreadRanks.Run(2, comm =>
        {
            try
            {
                new Trainer().Run(Config(data, 10), run, false, new Trainer.Options
                {
                    Compute = OneThread, Communicator = comm, Backend = t => new DriftingBackend(t, comm, drift: comm.Rank == 1),
                }, CancellationToken.None);
            }
            catch (Exception e) { errors[comm.Rank] = e; }
            return 0;
        });
        var stop = Assert.IsType<RunStoppedException>(errors[0]);
        Assert.False(stop.Quiet);
        Assert.StartsWith("the ranks' weights disagree at step 5 (state checksums rank 0 ", stop.Message);
        Assert.EndsWith("all ranks stopped without checkpointing it (no checkpoint was written yet).", stop.Message);
        Assert.True(Assert.IsType<RunStoppedException>(errors[1]).Quiet);
        Assert.Empty(TrainingCheckpoint.List(run));
    }

    [Fact]
    public void SummedPartsMatchOneBigBatchClosely()
    {
        // Parts change only the rounding of the gradient: each part is a mean over its samples scaled by 1/parts.
        var config = Trainer.Resolve(TrainerTests.Tiny(TrainerTests.MakeData(), 1) with { BatchSize = 8, ClassDropout = 0 }, new SampleShape(2, 8, 8), 3);
        Dictionary<string, float[]> Grads(int shards)
        {
            var net = TrainableNetwork.Create(config.ModelConfig!, config.Mediators);
            var ema = TrainableNetwork.Create(config.ModelConfig!, config.Mediators);
            var rng = new RandomSource(9);
            foreach (var p in net.Parameters) rng.FillGaussian(p.Value.Span, 0, 0.1f);
            var x1 = new Tensor(8, 2, 8, 8);
            new RandomSource(4).FillGaussian(x1.Span);
            Trainer.TrainStep(net, ema, new AdamW(net.Parameters, 1e-3), new Transport(), new RandomSource(5), x1, [0, 1, 2, 0, 1, 2, 0, 1],
                config with { GradShards = shards }, 0);
            return net.Parameters.Where(p => p.Trainable).ToDictionary(p => p.Name, p => p.Grad!.Span.ToArray());
        }
        var whole = Grads(1);
        var parts = Grads(8);
        foreach (var key in whole.Keys) TestData.AssertClose(whole[key], parts[key], 1e-5f, key);
    }
}
