using System.Text.Json;
using MediatorDiT.Data;
using MediatorDiT.IO;
using MediatorDiT.Sampling;

namespace MediatorDiT.Pipelines;

/// <summary>
/// Writes a <see cref="LadderDemoResult"/> as <c>demo.png</c> (the dynamic schedule's grid beside the
/// largest model's, one labelled row per class, see <see cref="LabelledGrid"/>) and <c>demo.json</c>
/// (FLOPs per image of both runs and of each model per evaluation, the model of every step, wall times,
/// savings, switch steps and class agreement). Both files are written atomically.
/// </summary>
public static class LadderDemoReport
{
    /// <summary>The picture's file name.</summary>
    public const string PictureName = "demo.png";
    /// <summary>The record's file name.</summary>
    public const string RecordName = "demo.json";

    /// <summary>Writes both files into <paramref name="folder"/> (created if needed) and returns their paths.</summary>
    /// <param name="folder">The output folder.</param>
    /// <param name="result">The demo's outcome.</param>
    /// <param name="modelPaths">The ladder's weight files, recorded in demo.json.</param>
    /// <param name="modelNames">Short names of the ladder models, e.g. m4, m16, m64.</param>
    /// <param name="classNames">One name per class, labelling the rows.</param>
    /// <param name="scale">Pixels per sample pixel in the picture.</param>
    /// <exception cref="MediatorDiTException">The name counts do not match the classes or models.</exception>
    public static (string Picture, string Record) Write(string folder, LadderDemoResult result, IReadOnlyList<string> modelPaths,
        IReadOnlyList<string> modelNames, IReadOnlyList<string> classNames, int scale = 3)
    {
        int classes = result.Labels.Length / result.Options.PerClass;
        if (classNames.Count != classes)
            throw new MediatorDiTException($"the demo has {classes} classes but {classNames.Count} class names were given.");
        if (modelNames.Count != result.FlopsPerModel.Count)
            throw new MediatorDiTException($"the demo ladder has {result.FlopsPerModel.Count} models but {modelNames.Count} names were given.");
        Directory.CreateDirectory(folder);
        string picturePath = Path.Combine(folder, PictureName), recordPath = Path.Combine(folder, RecordName);
        var picture = LabelledGrid.Render([result.Dynamic.Samples, result.Largest.Samples],
            [$"dynamic {string.Join("-", modelNames)}", $"{modelNames[^1]} alone"], classNames, result.Options.PerClass, scale);
        PngEncoder.Write(picturePath, picture);

        var record = new
        {
            models = modelPaths,
            model_names = modelNames,
            flops_per_image_per_evaluation = result.FlopsPerModel,
            sampler = "sde euler",
            steps = result.Options.Steps,
            ratios = result.SwitchRatios,
            first = result.First,
            seed = result.Options.Seed,
            per_class = result.Options.PerClass,
            class_names = classNames,
            picture = new { width = picture.Width, height = picture.Height, scale },
            dynamic = Describe(result.Dynamic),
            largest = Describe(result.Largest),
            switch_steps = result.SwitchSteps,
            flops_saving_percent = 100 * result.FlopsSaving,
            time_saving_percent = 100 * result.TimeSaving,
        };
        string json = JsonSerializer.Serialize(record, new JsonSerializerOptions { WriteIndented = true }) + "\n";
        AtomicFile.Write(recordPath, s => s.Write(System.Text.Encoding.UTF8.GetBytes(json)));
        return (picturePath, recordPath);
    }

    /// <summary>A run's record; model indices are the ladder's.</summary>
    private static object Describe(LadderDemoRun run) => new
    {
        flops_per_image = run.FlopsPerImage,
        gflops_per_image = run.FlopsPerImage / 1e9,
        wall_seconds = run.WallSeconds,
        class_agreement = run.ClassAgreement,
        evaluations = run.Usage.Evaluations,
        model_per_step = run.Usage.ModelPerStep.Select(s => s[0]),
    };
}
