using MediatorDiT.Cli.Rendering;
using MediatorDiT.Data;
using MediatorDiT.Diffusion;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;
using MediatorDiT.Training;

namespace MediatorDiT.Cli.Commands;

/// <summary>Writes a labelled sample grid (one row per class) from the EMA network during training.</summary>
public static class SampleHooks
{
    public static Action<TrainableNetwork, long, string> GridWriter(ProgressRenderer renderer) => (ema, step, path) =>
    {
        var model = ema.Members[^1];
        var cfg = model.Config;
        int classes = Math.Min(cfg.NumClasses, 10), perClass = 4, n = classes * perClass;
        var labels = Enumerable.Range(0, n).Select(i => i / perClass).ToArray();
        var z = new Tensor(n, cfg.InChannels, cfg.InputSize, cfg.InputSize);
        new RandomSource(1234).FillGaussian(z.Span);
        var ladder = ModelLadder.FromModel(model);
        var sampler = new OdeSampler(new Transport(), new OdeSamplerOptions { Method = OdeMethod.Euler, NumSteps = 25 });
        var result = sampler.Sample(ladder, z, labels);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        ImageGrid.SaveGrid(path, result.Samples, perClass);
        renderer.Message($"step {step}: sample grid {path}");
    };
}
