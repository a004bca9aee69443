using MediatorDiT.Diffusion;
using MediatorDiT.IO;
using MediatorDiT.Training;

namespace MediatorDiT.Tests.Training;

/// <summary>
/// The trainer's device seam: a run given its own backend takes every step through it, syncs the host state
/// before each checkpoint and the export, and (here a wrapper around the CPU backend) writes the same bits as
/// a default run.
/// </summary>
public class TrainingBackendTests
{
    private sealed class RecordingBackend(Transport transport, List<string> calls) : ITrainingBackend
    {
        private readonly CpuTrainingBackend _cpu = new(transport);

        public string Name => "recording CPU";

        public void Attach(TrainableNetwork network, TrainableNetwork ema, AdamW optimizer)
        {
            calls.Add("attach");
            _cpu.Attach(network, ema, optimizer);
        }

        public TrainingStepResult Step(TrainingBatch batch)
        {
            calls.Add("step");
            return _cpu.Step(batch);
        }

        public void SyncToHost() => calls.Add("sync");

        public void Dispose() => calls.Add("dispose");
    }

    [Fact]
    public void ARunThroughAnotherBackendStepsSyncsAndMatchesTheDefault()
    {
        string data = TrainerTests.MakeData();
        string dir = Path.GetDirectoryName(data)!;
        var config = TrainerTests.Tiny(data, 7) with { Mediators = [1, 4] }; // checkpoints at 5 and 7
        var calls = new List<string>();
        new Trainer().Run(config, Path.Combine(dir, "plain"), resume: false, new Trainer.Options(), CancellationToken.None);
        new Trainer().Run(config, Path.Combine(dir, "seam"), resume: false,
            new Trainer.Options { Backend = transport => new RecordingBackend(transport, calls) }, CancellationToken.None);

        // attach, 5 steps, sync (checkpoint 5), 2 steps, sync (checkpoint 7), sync (export), dispose.
        string[] expected = ["attach", .. Enumerable.Repeat("step", 5), "sync", "step", "step", "sync", "sync", "dispose"];
        Assert.Equal(expected, calls);
        foreach (var (step, path) in TrainingCheckpoint.List(Path.Combine(dir, "plain")))
        {
            var plain = SafeTensors.Read(path);
            var seam = SafeTensors.Read(TrainingCheckpoint.PathFor(Path.Combine(dir, "seam"), step));
            Assert.Equal(plain.Tensors.Keys.Order(), seam.Tensors.Keys.Order());
            foreach (var (key, value) in plain.Tensors)
                Assert.Equal(value.ToFloat().Span.ToArray(), seam.Tensors[key].ToFloat().Span.ToArray());
        }
    }
}
