using System.Text.Json;
using MediatorDiT.Pipelines;

namespace MediatorDiT.Cli.Commands;

/// <summary>run.json of `mdit sample`: the command line and the pipeline's <see cref="GenerationRecord"/> in snake_case keys.</summary>
internal static class RunRecordFile
{
    public static void Write(string path, GenerationRecord record)
    {
        var json = new
        {
            command = Environment.GetCommandLineArgs().Skip(1),
            models = record.Models,
            family = record.Family,
            sampler = record.Sampler,
            steps = record.Steps,
            schedule = record.Schedule,
            image_size = record.ImageSize,
            cfg_scale = record.GuidanceScale,
            cfg_channels = record.GuidedChannels,
            mediators = record.Mediators,
            seed = record.Seed,
            rank = record.Rank,
            world_size = record.WorldSize,
            images = record.ImageCount,
            wall_seconds = record.WallSeconds,
            mean_gflops_per_image = record.MeanGflopsPerImage,
            largest_model_gflops_per_image = record.LargestModelGflopsPerImage,
            flops_saving = record.FlopsSaving,
            samples = record.Images.Select(i => new { index = i.Index, label = i.Label, first_step_of_model = i.FirstStepOfModel, gflops = i.Gflops }),
        };
        File.WriteAllText(path, JsonSerializer.Serialize(json, new JsonSerializerOptions { WriteIndented = true }));
    }
}
