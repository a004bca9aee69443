using System.Text.Json;
using MediatorDiT.Diffusion;
using MediatorDiT.IO;
using MediatorDiT.Models;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Sampling;

/// <summary>
/// The official step-wise dynamic mediator run (switching_sde_euler): its three models, inputs, recorded
/// noise and outputs, and the sampler settings from manifest.json.
/// </summary>
internal sealed class SwitchingFixture
{
    public const string FileName = "switching_sde_euler.io.safetensors";

    public required SiTModel[] Models { get; init; }
    public required Tensor Z { get; init; }
    public required int[] Y { get; init; }
    public required Tensor Noise { get; init; }
    public required Tensor Trajectory { get; init; }
    public required Tensor Final { get; init; }
    public required int[] ModelUsed { get; init; }
    public required double[] Ratios { get; init; }
    public required int ReferenceSteps { get; init; }
    public required StateDistance Distance { get; init; }
    public required SdeSamplerOptions Options { get; init; }

    public static SwitchingFixture Load()
    {
        using var manifest = JsonDocument.Parse(File.ReadAllText(Fixtures.PathOf("manifest.json")));
        var section = manifest.RootElement.GetProperty("switching_sde_euler");
        var io = SafeTensors.Read(Fixtures.PathOf(FileName));
        var configs = section.GetProperty("configs").EnumerateArray().ToArray();
        var models = new SiTModel[configs.Length];
        for (int i = 0; i < configs.Length; i++)
        {
            var model = new SiTModel(ModelConfig.FromJson(configs[i].GetRawText(), "manifest.json"));
            string prefix = $"model{i + 1}.";
            var state = io.Tensors.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal))
                .ToDictionary(kv => kv.Key[prefix.Length..], kv => kv.Value);
            StateDict.LoadInto(model, state, strict: true, $"{FileName} {prefix}*");
            models[i] = model;
        }
        var sampler = section.GetProperty("sampler");
        Assert.Equal("SDE", sampler.GetProperty("mode").GetString());
        Assert.Equal("Euler", sampler.GetProperty("method").GetString());
        Assert.Equal("sigma", sampler.GetProperty("diffusion_form").GetString());
        Assert.Equal("Mean", sampler.GetProperty("last_step").GetString());
        Assert.Equal("Linear", sampler.GetProperty("path").GetString());
        Assert.Equal("velocity", sampler.GetProperty("prediction").GetString());
        return new SwitchingFixture
        {
            Models = models,
            Z = io.GetFloat("z"),
            Y = io.GetInt64("y").Select(v => (int)v).ToArray(),
            Noise = io.GetFloat("noise"),
            Trajectory = io.GetFloat("trajectory"),
            Final = io.GetFloat("final"),
            ModelUsed = io.GetInt64("model_used").Select(v => (int)v).ToArray(),
            Ratios = [section.GetProperty("switch_ratio1").GetDouble(), section.GetProperty("switch_ratio2").GetDouble()],
            ReferenceSteps = section.GetProperty("first_several_num").GetInt32(),
            Distance = section.GetProperty("distance").GetString() == "mae" ? StateDistance.MeanAbsolute : StateDistance.MeanSquared,
            Options = new SdeSamplerOptions
            {
                Method = SdeMethod.Euler,
                DiffusionForm = DiffusionForm.Sigma,
                DiffusionNorm = sampler.GetProperty("diffusion_norm").GetDouble(),
                LastStep = LastStep.Mean,
                LastStepSize = sampler.GetProperty("last_step_size").GetDouble(),
                NumSteps = sampler.GetProperty("num_steps").GetInt32(),
            },
        };
    }

    public SdeSampler Sampler() => new(new Transport(PathType.Linear, PredictionType.Velocity), Options);

    public AdaptiveModelSchedule Schedule(DecisionScope scope = DecisionScope.BatchMean) =>
        new(Ratios, ReferenceSteps, Distance, scope);

    /// <summary>Trajectory entry i as its own tensor.</summary>
    public Tensor TrajectoryAt(int i)
    {
        int per = Trajectory.Length / Trajectory.Dim(0);
        return new Tensor(Trajectory.Span.Slice(i * per, per).ToArray(), Trajectory.Shape[1..]);
    }
}
