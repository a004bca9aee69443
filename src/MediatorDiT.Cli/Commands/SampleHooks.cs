using MediatorDiT.Cli.Rendering;
using MediatorDiT.Data;
using MediatorDiT.Diffusion;
using MediatorDiT.IO;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;
using MediatorDiT.Training;

namespace MediatorDiT.Cli.Commands;

/// <summary>
/// Writes a sample grid (one row per class) from the EMA network during training; a latent model's samples are
/// written as latents instead, to be decoded by the VAE.
/// </summary>
public static class SampleHooks
{
    /// <summary>
    /// The grid: 4 images of each of the first 10 classes from the largest member, the same noise every time (seed
    /// 1234), integrated as an ODE with the request's number of Euler steps (the config's sample_steps).
    /// </summary>
    public static Action<TrainingSampleRequest> GridWriter(ProgressRenderer renderer) => request =>
    {
        var model = request.Ema.Members[^1];
        var cfg = model.Config;
        int classes = Math.Min(cfg.NumClasses, 10), perClass = 4, n = classes * perClass;
        var labels = Enumerable.Range(0, n).Select(i => i / perClass).ToArray();
        var z = new Tensor(n, cfg.InChannels, cfg.InputSize, cfg.InputSize);
        new RandomSource(1234).FillGaussian(z.Span);
        var ladder = ModelLadder.FromModel(model);
        var sampler = new OdeSampler(new Transport(), new OdeSamplerOptions { Method = OdeMethod.Euler, NumSteps = request.SamplingSteps });
        var result = sampler.Sample(ladder, z, labels);
        Directory.CreateDirectory(Path.GetDirectoryName(request.Path)!);
        if (cfg.InChannels is 1 or 3)
        {
            ImageGrid.SaveGrid(request.Path, result.Samples, perClass);
            renderer.Message($"step {request.Step}: sample grid {request.Path} ({request.SamplingSteps} Euler ODE steps)");
            return;
        }
        // Latents (e.g. 4 channels of the SD VAE) are no picture: keep them for `mdit vae decode`.
        string latents = Path.ChangeExtension(request.Path, ".safetensors");
        SafeTensors.Write(latents, new Dictionary<string, StoredTensor> { ["z"] = StoredTensor.FromFloat(result.Samples) });
        renderer.Message($"step {request.Step}: sample latents {latents} ({request.SamplingSteps} Euler ODE steps; " +
            $"`mdit vae decode --weights VAE --inputs {latents} --key z --latent-scale 0.18215 --out DIR` draws them)");
    };
}
