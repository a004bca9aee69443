using System.Text.Json.Nodes;
using MediatorDiT.Cuda.Models;
using MediatorDiT.Cuda.Performance;
using MediatorDiT.Cuda.Sampling;
using MediatorDiT.Cuda.Training;
using MediatorDiT.Diffusion;
using MediatorDiT.IO;
using MediatorDiT.Models;
using MediatorDiT.Tensors;
using MediatorDiT.Training;

namespace MediatorDiT.GpuCheck;

/// <summary>
/// fp32 parity of the device backend: <see cref="DeviceModelFunction"/> on the golden fixtures against the official
/// outputs and against the CPU model, and <see cref="DeviceTrainingBackend"/> against <see cref="CpuTrainingBackend"/>
/// over a few steps of a small model. Errors are scaled as the tests scale them (docs/GPU.md).
/// </summary>
public static class ParityChecks
{
    /// <summary>The forward bound: |device - reference| &lt;= 1e-4 max(1, max |reference|).</summary>
    public const double ForwardTolerance = 1e-4;

    /// <summary>The gradient and weight bound: |device - cpu| &lt;= 1e-3 max(|cpu|, rms(cpu)) element by element.</summary>
    public const double GradientTolerance = 1e-3;

    /// <summary>The SiT fixture cases and the DiT one, each a model with its io file (../shared/fixtures/README.md).</summary>
    public static IReadOnlyList<string> FixtureCases { get; } = ["mediator_grid4_m4", "mediator_grid8_m16", "full_grid8", "dit_model"];

    /// <summary>The files of the fixture cases, for the bundle.</summary>
    public static IEnumerable<string> FixtureFiles => FixtureCases.SelectMany(c => new[] { $"{c}.weights.safetensors", $"{c}.io.safetensors" });

    /// <summary>
    /// One fixture case on the device: the plain forward against the fixture's <c>out</c> and the CPU model, and the
    /// guided forward (scale 4 on the first 3 channels, the official forward_with_cfg) against <c>cfg.out</c> and the CPU.
    /// </summary>
    /// <param name="device">The accelerator.</param>
    /// <param name="fixtures">The fixtures folder.</param>
    /// <param name="name">The case.</param>
    /// <param name="entry">Receives the errors.</param>
    public static void Forward(CheckDevice device, string fixtures, string name, JsonObject entry)
    {
        var (model, io) = LoadFixture(fixtures, name);
        var config = model.Config;
        using var function = new DeviceModelFunction(model, device.Accelerator);

        var (x, t, y) = (io.GetFloat("x"), Times(io, "t"), Labels(io, "y"));
        var plain = function.Evaluate(x, t, y);
        var cpuPlain = model.Forward(x, t, y);
        var (cx, ct, cy) = (io.GetFloat("cfg.x"), Times(io, "cfg.t"), Labels(io, "cfg.y"));
        var guided = function.ForwardWithCfg(cx, ct, cy, 4f, 3);
        var cpuGuided = model.ForwardWithCfg(cx, ct, cy, 4f, guidedChannels: 3);

        entry["config"] = $"{config.Family} {config.Attention} hidden {config.HiddenSize} depth {config.Depth} tokens {config.NumTokens} mediators {config.MediatorNum} learn_sigma {config.LearnSigma}";
        entry["batch"] = x.Dim(0);
        double[] errors =
        [
            Scaled(io.GetFloat("out").Span, plain.Span), Scaled(cpuPlain.Span, plain.Span),
            Scaled(io.GetFloat("cfg.out").Span, guided.Span), Scaled(cpuGuided.Span, guided.Span),
        ];
        entry["out_vs_fixture"] = CheckReport.Number(errors[0]);
        entry["out_vs_cpu"] = CheckReport.Number(errors[1]);
        entry["cfg_out_vs_fixture"] = CheckReport.Number(errors[2]);
        entry["cfg_out_vs_cpu"] = CheckReport.Number(errors[3]);
        entry["cpu_out_vs_fixture"] = CheckReport.Number(Scaled(io.GetFloat("out").Span, cpuPlain.Span));
        entry["tolerance"] = ForwardTolerance;
        entry["error_scale"] = "max |device - reference| / max(1, max |reference|)";
        entry["pass"] = errors.All(e => e <= ForwardTolerance);
    }

    /// <summary>Largest bf16-against-fp32 difference the library's tests allow (docs/GPU.md, "Precision").</summary>
    public const double Bf16Tolerance = 3e-2;

    /// <summary>
    /// The forward of fixture <paramref name="name"/> on the device in bf16 against fp32 on the same device (plain and
    /// guided): how far bf16 products move the output, on real weights.
    /// </summary>
    /// <param name="device">The accelerator.</param>
    /// <param name="fixtures">The fixtures folder.</param>
    /// <param name="name">The case.</param>
    /// <param name="entry">Receives the differences.</param>
    public static void Bf16Forward(CheckDevice device, string fixtures, string name, JsonObject entry)
    {
        var (model, io) = LoadFixture(fixtures, name);
        using var fp32 = new DeviceModelFunction(model, device.Accelerator, precision: DevicePrecision.Fp32);
        using var bf16 = new DeviceModelFunction(model, device.Accelerator, precision: DevicePrecision.Bf16);
        var (x, t, y) = (io.GetFloat("x"), Times(io, "t"), Labels(io, "y"));
        var (cx, ct, cy) = (io.GetFloat("cfg.x"), Times(io, "cfg.t"), Labels(io, "cfg.y"));
        double plain = Scaled(fp32.Evaluate(x, t, y).Span, bf16.Evaluate(x, t, y).Span);
        double guided = Scaled(fp32.ForwardWithCfg(cx, ct, cy, 4f, 3).Span, bf16.ForwardWithCfg(cx, ct, cy, 4f, 3).Span);
        entry["out_bf16_vs_fp32"] = CheckReport.Number(plain);
        entry["cfg_out_bf16_vs_fp32"] = CheckReport.Number(guided);
        // Guidance at scale s forms uncond + s (cond - uncond): each half's error reaches the output times at most
        // |s| + |s - 1| = 2s - 1 (7 at s = 4), relative to an output of the same scale.
        double guidedBound = Bf16Tolerance * (2 * 4f - 1);
        entry["bound"] = Bf16Tolerance;
        entry["bound_guided"] = guidedBound;
        entry["error_scale"] = "max |bf16 - fp32| / max(1, max |fp32|)";
        entry["pass"] = plain <= Bf16Tolerance && guided <= guidedBound && plain > 0;
    }

    /// <summary>
    /// The device training step against the CPU one on a small SiT (8x8x2 input, patch 2, hidden 16, depth 2, learn_sigma,
    /// batch 4), full or 4-mediator attention, from the same weights and batches: per step the loss and the gradient norm;
    /// after step 1 the AdamW first moments, which are 0.1 times the gradients (no clipping), i.e. every gradient; after 3
    /// steps every weight and EMA value.
    /// </summary>
    /// <param name="device">The accelerator.</param>
    /// <param name="mediators">0: full attention; else the mediator count.</param>
    /// <param name="entry">Receives the differences.</param>
    public static void Training(CheckDevice device, int mediators, JsonObject entry)
    {
        var config = SmallTrainingConfig;
        int[] counts = mediators == 0 ? [] : [mediators];
        var transport = new Transport();
        var (cpuNet, cpuEma, cpuOpt) = Network(config, counts, 5);
        var (devNet, devEma, devOpt) = Network(config, counts, 5);
        using var cpu = new CpuTrainingBackend(transport);
        using var dev = new DeviceTrainingBackend(device.Accelerator, transport);
        cpu.Attach(cpuNet, cpuEma, cpuOpt);
        dev.Attach(devNet, devEma, devOpt);

        double lossDiff = 0, normDiff = 0, gradDiff = 0;
        var losses = new JsonArray();
        for (int step = 0; step < 3; step++)
        {
            var batch = DeviceWorkload.RandomBatch(config, 4, 100 + step);
            var expected = cpu.Step(batch);
            var actual = dev.Step(batch);
            lossDiff = Math.Max(lossDiff, RelativeTo(expected.Loss, actual.Loss));
            normDiff = Math.Max(normDiff, RelativeTo(expected.GradNorm, actual.GradNorm));
            losses.Add(new JsonObject
            {
                ["cpu_loss"] = CheckReport.Number(expected.Loss), ["device_loss"] = CheckReport.Number(actual.Loss),
                ["cpu_grad_norm"] = CheckReport.Number(expected.GradNorm), ["device_grad_norm"] = CheckReport.Number(actual.GradNorm),
            });
            if (step == 0)
            {
                dev.SyncToHost();
                var (cpuState, devState) = (cpuOpt.State, devOpt.State);
                for (int i = 0; i < cpuState.Count; i++)
                    gradDiff = Math.Max(gradDiff, Relative(cpuState[i].ExpAvg.Span, devState[i].ExpAvg.Span));
            }
        }
        dev.SyncToHost();
        double weightDiff = 0, emaDiff = 0;
        for (int i = 0; i < cpuNet.Parameters.Count; i++)
        {
            if (!cpuNet.Parameters[i].Trainable) continue;
            bool qkvBias = cpuNet.NameOf(cpuNet.Parameters[i]).EndsWith("attn.qkv.bias", StringComparison.Ordinal);
            weightDiff = Math.Max(weightDiff, Relative(cpuNet.Parameters[i].Value.Span, devNet.Parameters[i].Value.Span, qkvBias));
            emaDiff = Math.Max(emaDiff, Relative(cpuEma.Parameters[i].Value.Span, devEma.Parameters[i].Value.Span, qkvBias));
        }
        entry["config"] = TrainingCase(config, mediators, 4, 3);
        entry["steps"] = losses;
        entry["loss_max_rel_diff"] = CheckReport.Number(lossDiff);
        entry["grad_norm_max_rel_diff"] = CheckReport.Number(normDiff);
        entry["grad_max_rel_diff"] = CheckReport.Number(gradDiff);
        entry["weight_max_rel_diff"] = CheckReport.Number(weightDiff);
        entry["ema_max_rel_diff"] = CheckReport.Number(emaDiff);
        entry["loss_tolerance"] = ForwardTolerance;
        entry["gradient_tolerance"] = GradientTolerance;
        entry["error_scale"] = "loss and grad norm: relative; gradients (step 1's AdamW first moments), weights and EMA after 3 steps: max |device - cpu| / max(|cpu|, rms(cpu)), the key third of attn.qkv.bias left out of the weights (its gradient is zero in exact arithmetic, AdamW turns rounding residue there into lr-sized steps)";
        entry["pass"] = lossDiff <= ForwardTolerance && normDiff <= ForwardTolerance && gradDiff <= GradientTolerance
            && weightDiff <= GradientTolerance && emaDiff <= GradientTolerance;
    }

    /// <summary>The small SiT of the fp32 training parity: 8x8x2 input, patch 2 (16 tokens), hidden 16, depth 2, 2 heads, learn_sigma.</summary>
    private static ModelConfig SmallTrainingConfig => new()
    {
        InputSize = 8, PatchSize = 2, InChannels = 2, HiddenSize = 16, Depth = 2, NumHeads = 2, MlpRatio = 2.0, NumClasses = 3,
        LearnSigma = true,
    };

    /// <summary>bf16 training's bounds against fp32, relative: the loss 2e-2, the gradient norm 5e-2 (the library's tests, docs/GPU.md "Precision").</summary>
    public const double Bf16LossBound = 2e-2, Bf16NormBound = 5e-2;

    /// <summary>
    /// Training in bf16 on the device against training in fp32 on the device, and the default bf16 step (operands written
    /// by their producing kernels) against the reference bf16 step (each operand rounded in a pass of its own), 3 steps
    /// from the same weights and batches. Full (not <paramref name="quick"/>): a SiT with SiT-XL's head width (hidden 144,
    /// 2 heads of 72, depth 2, 4x MLP, 4 input channels, learn_sigma, batch 2, weights N(0, 1/144)), full attention at
    /// 400 tokens (40x40 input: rows past the short softmax's 256 logits, and too many for the step to keep P) or, with
    /// <paramref name="keptProbabilities"/>, at 256 tokens (P kept for the backward, as at SiT-XL/2), or 16 mediators at
    /// 256 tokens; quick: the fp32 parity's small SiT (batch 4, weights N(0, 0.04)), full attention at 36 tokens (12x12
    /// input, P not kept: 2 heads x 36 > 4 x 16) or, with <paramref name="keptProbabilities"/>, at its 16.
    /// Per step the loss and gradient norm of all three; after 3 steps the largest weight difference of each pair.
    /// Bounds: bf16 against fp32 within <see cref="Bf16LossBound"/> and <see cref="Bf16NormBound"/> (and not equal: the
    /// bf16 products ran), the weights within the two runs' largest possible AdamW movement (3 steps of at most
    /// lr (1 - beta1) / sqrt(1 - beta2) = 3.17 lr each, both runs); the two bf16 steps within the same bounds: on the CPU
    /// accelerator they agree bit for bit, on a card each kernel's multiplies and adds may be contracted differently.
    /// </summary>
    /// <param name="device">The accelerator.</param>
    /// <param name="mediators">0: full attention; else the mediator count (a square, at most the tokens).</param>
    /// <param name="quick">The small SiT (the CPU accelerator in CI).</param>
    /// <param name="entry">Receives the differences.</param>
    /// <param name="keptProbabilities">Full attention at the size whose step keeps P (else one past it).</param>
    public static void Bf16Training(CheckDevice device, int mediators, bool quick, JsonObject entry, bool keptProbabilities = false)
    {
        bool longRows = mediators == 0 && !keptProbabilities;
        var config = quick
            ? SmallTrainingConfig with { InputSize = longRows ? 12 : SmallTrainingConfig.InputSize }
            : new ModelConfig
            {
                InputSize = longRows ? 40 : 32, PatchSize = 2, InChannels = 4, HiddenSize = 144, Depth = 2, NumHeads = 2, MlpRatio = 4.0,
                NumClasses = 10, LearnSigma = true,
            };
        int[] counts = mediators == 0 ? [] : [mediators];
        const int steps = 3;
        int batchSize = quick ? 4 : 2;
        // Weights of about unit gain per layer (std 1 / sqrt(hidden); 0.2 for hidden 16): wider layers at 0.2 would
        // grow the activations layer by layer until bf16's relative error is amplified past any bound.
        float std = quick ? 0.2f : 1f / MathF.Sqrt(config.HiddenSize);
        var transport = new Transport();
        var names = new[] { "fp32", "bf16", "bf16_separate_roundings" };
        var runs = names.Select(_ => Network(config, counts, 7, std)).ToArray();
        var backends = new[]
        {
            new DeviceTrainingBackend(device.Accelerator, transport, DevicePrecision.Fp32),
            new DeviceTrainingBackend(device.Accelerator, transport, DevicePrecision.Bf16),
            new DeviceTrainingBackend(device.Accelerator, transport, DevicePrecision.Bf16, null, null, operandsFromProducers: false),
        };
        try
        {
            for (int i = 0; i < runs.Length; i++) backends[i].Attach(runs[i].Net, runs[i].Ema, runs[i].Opt);
            double lossBf16 = 0, normBf16 = 0, lossRounding = 0, normRounding = 0;
            var stepEntries = new JsonArray();
            for (int step = 0; step < steps; step++)
            {
                var batch = DeviceWorkload.RandomBatch(config, batchSize, 300 + step);
                var results = backends.Select(b => b.Step(batch)).ToArray();
                var stepEntry = new JsonObject();
                for (int i = 0; i < names.Length; i++)
                {
                    stepEntry[$"{names[i]}_loss"] = CheckReport.Number(results[i].Loss);
                    stepEntry[$"{names[i]}_grad_norm"] = CheckReport.Number(results[i].GradNorm);
                }
                stepEntries.Add(stepEntry);
                lossBf16 = Math.Max(lossBf16, RelativeTo(results[0].Loss, results[1].Loss));
                normBf16 = Math.Max(normBf16, RelativeTo(results[0].GradNorm, results[1].GradNorm));
                lossRounding = Math.Max(lossRounding, RelativeTo(results[2].Loss, results[1].Loss));
                normRounding = Math.Max(normRounding, RelativeTo(results[2].GradNorm, results[1].GradNorm));
            }
            foreach (var backend in backends) backend.SyncToHost();
            double weightsBf16 = LargestDifference(runs[0].Net, runs[1].Net), weightsRounding = LargestDifference(runs[2].Net, runs[1].Net);
            var adam = runs[0].Opt;
            double weightBound = 2 * steps * adam.LearningRate * (1 - adam.Beta1) / Math.Sqrt(1 - adam.Beta2);

            entry["config"] = TrainingCase(config, mediators, batchSize, steps) + $", weights N(0, {std:G3}^2)";
            entry["probabilities_kept"] = AttentionProducts.KeepsProbabilities(AttentionKinds.WithMediators(config, counts.Length == 0 ? null : counts[^1]));
            entry["steps"] = stepEntries;
            entry["loss_bf16_vs_fp32"] = CheckReport.Number(lossBf16);
            entry["grad_norm_bf16_vs_fp32"] = CheckReport.Number(normBf16);
            entry["weights_bf16_vs_fp32"] = CheckReport.Number(weightsBf16);
            entry["loss_bf16_vs_separate_roundings"] = CheckReport.Number(lossRounding);
            entry["grad_norm_bf16_vs_separate_roundings"] = CheckReport.Number(normRounding);
            entry["weights_bf16_vs_separate_roundings"] = CheckReport.Number(weightsRounding);
            entry["loss_bound"] = Bf16LossBound;
            entry["grad_norm_bound"] = Bf16NormBound;
            entry["weight_bound"] = weightBound;
            entry["error_scale"] = "loss and grad norm: max over the steps of |a - b| / |b| (b: fp32, or the separate roundings); weights after the steps: max |a - b| over every weight";
            entry["pass"] = lossBf16 > 0 && lossBf16 <= Bf16LossBound && normBf16 <= Bf16NormBound && weightsBf16 <= weightBound
                && lossRounding <= Bf16LossBound && normRounding <= Bf16NormBound && weightsRounding <= weightBound;
        }
        finally
        {
            foreach (var backend in backends) backend.Dispose();
        }
    }

    /// <summary>A training parity case's network and run, for the report.</summary>
    private static string TrainingCase(ModelConfig c, int mediators, int batch, int steps) =>
        $"SiT {(mediators == 0 ? "full attention" : $"{mediators} mediators")}, {c.InputSize}x{c.InputSize}x{c.InChannels} input, patch {c.PatchSize} "
        + $"({c.NumTokens} tokens), hidden {c.HiddenSize}, {c.NumHeads} heads, depth {c.Depth}, learn_sigma, batch {batch}, AdamW lr 1e-3 wd 0.01, {steps} steps";

    private static double RelativeTo(double expected, double actual) => Math.Abs(actual - expected) / Math.Abs(expected);

    /// <summary>max |a - b| over every trainable weight of two networks of one config; infinite for a non-finite value.</summary>
    public static double LargestDifference(TrainableNetwork expected, TrainableNetwork actual)
    {
        double worst = 0;
        for (int i = 0; i < expected.Parameters.Count; i++)
            if (expected.Parameters[i].Trainable)
                worst = Math.Max(worst, LargestDifference(expected.Parameters[i].Value.Span, actual.Parameters[i].Value.Span));
        return worst;
    }

    /// <summary>The fixtures folder: the one given, else ../shared/fixtures beside a MediatorDiT.sln above the working folder or the program, else fixtures/ beside the program.</summary>
    /// <param name="given">The --fixtures value, or null.</param>
    public static string? FindFixtures(string? given)
    {
        if (given is not null) return Path.GetFullPath(given);
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "MediatorDiT.sln")))
                {
                    string shared = Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "fixtures"));
                    if (Directory.Exists(shared)) return shared;
                }
        }
        string beside = Path.Combine(AppContext.BaseDirectory, "fixtures");
        return Directory.Exists(beside) ? beside : null;
    }

    /// <summary>Fixture <paramref name="name"/>'s network (its official weights) and its io file of inputs and outputs.</summary>
    private static (SiTModel Model, SafeTensorsFile Io) LoadFixture(string fixtures, string name)
    {
        var weights = SafeTensors.Read(FixtureFile(fixtures, $"{name}.weights.safetensors"));
        var model = new SiTModel(ModelConfig.FromJson(weights.Metadata["config"], name));
        StateDict.LoadInto(model, weights.Tensors, strict: true, name);
        return (model, SafeTensors.Read(FixtureFile(fixtures, $"{name}.io.safetensors")));
    }

    private static string FixtureFile(string dir, string file)
    {
        string path = Path.Combine(dir, file);
        return File.Exists(path) ? path : throw new FileNotFoundException($"fixture {path} is missing (--fixtures DIR)");
    }

    private static float[] Times(SafeTensorsFile io, string key) =>
        io.Tensors[key].DType == DType.I64 ? io.GetInt64(key).Select(v => (float)v).ToArray() : io.GetFloat(key).Span.ToArray();

    private static int[] Labels(SafeTensorsFile io, string key) => io.GetInt64(key).Select(v => (int)v).ToArray();

    /// <summary>max |actual - expected| / max(1, max |expected|); infinite for a shape mismatch or a non-finite value.</summary>
    private static double Scaled(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual)
    {
        double scale = 1;
        foreach (float e in expected) scale = Math.Max(scale, Math.Abs(e));
        return LargestDifference(expected, actual) / scale;
    }

    /// <summary>max |actual - expected|; infinite for a shape mismatch or a non-finite value.</summary>
    private static double LargestDifference(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual)
    {
        if (expected.Length != actual.Length) return double.PositiveInfinity;
        double worst = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double d = Math.Abs((double)actual[i] - expected[i]);
            if (!double.IsFinite(d)) return double.PositiveInfinity;
            worst = Math.Max(worst, d);
        }
        return worst;
    }

    /// <summary>max |actual - expected| / max(|expected|, rms(expected)) (0 for an all-zero tensor equal on both sides); the middle third skipped when asked.</summary>
    private static double Relative(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, bool skipMiddleThird = false)
    {
        if (expected.Length != actual.Length) return double.PositiveInfinity;
        int third = expected.Length / 3;
        double squares = 0;
        foreach (float e in expected) squares += (double)e * e;
        double rms = Math.Sqrt(squares / Math.Max(1, expected.Length)), worst = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            if (skipMiddleThird && i >= third && i < 2 * third) continue;
            double d = Math.Abs((double)actual[i] - expected[i]);
            if (!double.IsFinite(d)) return double.PositiveInfinity;
            double scale = Math.Max(Math.Abs((double)expected[i]), rms);
            if (d == 0) continue;
            worst = Math.Max(worst, scale == 0 ? double.PositiveInfinity : d / scale);
        }
        return worst;
    }

    /// <summary>A network, its EMA and optimiser with N(0, std^2) weights from <paramref name="seed"/> (the EMA starts as a copy).</summary>
    public static (TrainableNetwork Net, TrainableNetwork Ema, AdamW Opt) Network(ModelConfig config, int[] mediators, int seed, float std = 0.2f)
    {
        var net = TrainableNetwork.Create(config, mediators);
        var ema = TrainableNetwork.Create(config, mediators);
        var random = new RandomSource((ulong)seed);
        foreach (var p in net.Parameters)
            if (p.Trainable) random.FillGaussian(p.Value.Span, 0, std);
        Ema.CopyWeights(net, ema);
        return (net, ema, new AdamW(net.Parameters, 1e-3, weightDecay: 0.01));
    }
}
