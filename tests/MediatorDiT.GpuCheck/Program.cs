using System.Text.Json.Nodes;
using MediatorDiT.GpuCheck;

// The device check (docs/GPU.md, "The device check"): libraries and card, fp32 parity against the golden fixtures and
// the CPU backend, and the speed cases, written to OUT/gpu-check.json with a readable log on stdout.
string? outDir = null, fixtures = null, accelerator = "cuda";
bool quick = false;
double budget = 360;
int? sampleSteps = null, sampleBatch = null;
string? precisionText = null;
string[]? only = null;
for (int i = 0; i < args.Length; i++)
{
    string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
    switch (args[i])
    {
        case "--out": outDir = Value(); break;
        case "--fixtures": fixtures = Value(); break;
        case "--accelerator": accelerator = Value(); break;
        case "--quick": quick = true; break;
        case "--budget-seconds": budget = double.Parse(Value(), System.Globalization.CultureInfo.InvariantCulture); break;
        case "--sample-steps": sampleSteps = int.Parse(Value()); break;
        case "--sample-batch": sampleBatch = int.Parse(Value()); break;
        case "--precision": precisionText = Value(); break;
        case "--cases": only = Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries); break;
        default:
            Console.Error.WriteLine($"unknown argument {args[i]}");
            outDir = null;
            i = args.Length;
            break;
    }
}
MediatorDiT.Tensors.DevicePrecision precision = accelerator == "cuda" ? MediatorDiT.Tensors.DevicePrecision.Bf16 : MediatorDiT.Tensors.DevicePrecision.Fp32;
if (outDir is null || accelerator is not ("cuda" or "cpu") || (precisionText is not null && !MediatorDiT.Tensors.DevicePrecisions.TryParse(precisionText, out precision)))
{
    Console.Error.WriteLine("usage: MediatorDiT.GpuCheck --out DIR [--accelerator cuda|cpu] [--fixtures DIR] [--quick] [--budget-seconds S] [--sample-steps N] [--sample-batch B] [--precision fp32|bf16 (speed cases; default bf16 on cuda, fp32 on cpu)] [--cases PREFIX,... (only the cases named so)]");
    return 2;
}
Directory.CreateDirectory(outDir);
string json = Path.Combine(outDir, "gpu-check.json");
var report = new CheckReport(budget, Console.Out) { SavePath = json, Only = only };
var options = new SpeedChecks.Options(quick, sampleSteps ?? (quick ? 2 : 25), sampleBatch ?? (quick ? 2 : 16), precision);
report.Root["program"] = "MediatorDiT.GpuCheck";
report.Root["accelerator"] = accelerator;
report.Root["quick"] = quick;
report.Root["budget_seconds"] = budget;
report.Root["cases_asked"] = only is null ? null : new JsonArray(only.Select(c => (JsonNode)c).ToArray());
report.Root["started_utc"] = DateTime.UtcNow.ToString("o");
report.Root["runtime"] = System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription;
report.Root["flop_convention"] = "2 FLOPs per multiply-accumulate of the library's FlopCounter (linear layers, attention products, convolutions; no elementwise work); a training step = 3 forwards (backward = 2 x forward)";
report.Root["speed_precision"] = MediatorDiT.Tensors.DevicePrecisions.Name(precision);
string? fixtureDir = ParityChecks.FindFixtures(fixtures);
report.Root["fixtures"] = fixtureDir;

report.Run("libraries", CheckDevice.DescribeLibraries);
CheckDevice? device = null;
report.Run("device", entry =>
{
    device = CheckDevice.Open(accelerator);
    device.Describe(entry);
});
// MFU's limits: the card's own dense peaks where DevicePeaks knows it (H200 and H100 SXM: 989 / 67 TFLOP/s).
if (device is not null)
    report.Root["peaks"] = new JsonObject
    {
        ["bf16_flops_per_second"] = device.Peaks.Bf16, ["fp32_flops_per_second"] = device.Peaks.Fp32,
        ["known"] = device.Peaks.Known, ["what"] = device.Peaks.Description,
        ["note"] = "dense peaks; parity runs in fp32, the speed cases in the precision below; MFU is given against both",
    };
void OnDevice(string name, Action<CheckDevice, JsonObject> body) =>
    report.Run(name, entry => body(device ?? throw new InvalidOperationException("the device did not open (see the case \"device\")"), entry));

// What the element kernels can reach: the driver's copy against the library's rounding kernel.
OnDevice("bandwidth", (d, e) => BandwidthChecks.Measure(d, quick, e));
// What the driver's compiler made of the fused attention kernels (registers, local memory): a card only.
if (device?.IsCuda == true) OnDevice("fused_attention_kernels", (d, e) => KernelChecks.FusedAttention(d, e));
else report.Skip("fused_attention_kernels", "the driver's function attributes exist on a CUDA device only");

foreach (string name in ParityChecks.FixtureCases)
    if (quick && name != ParityChecks.FixtureCases[0]) report.Skip($"parity_forward_{name}", $"--quick runs the smallest fixture only ({ParityChecks.FixtureCases[0]})");
    else OnDevice($"parity_forward_{name}", (d, e) => ParityChecks.Forward(d, fixtureDir ?? throw new DirectoryNotFoundException("no fixtures folder (--fixtures DIR)"), name, e));
OnDevice("parity_bf16_forward", (d, e) => ParityChecks.Bf16Forward(d, fixtureDir ?? throw new DirectoryNotFoundException("no fixtures folder (--fixtures DIR)"), ParityChecks.FixtureCases[0], e));
OnDevice("parity_training_full", (d, e) => ParityChecks.Training(d, 0, e));
OnDevice("parity_training_mediator", (d, e) => ParityChecks.Training(d, 4, e));
OnDevice("parity_bf16_training_full", (d, e) => ParityChecks.Bf16Training(d, 0, quick, e));
OnDevice("parity_bf16_training_kept_p", (d, e) => ParityChecks.Bf16Training(d, 0, quick, e, keptProbabilities: true));
OnDevice("parity_bf16_training_mediator", (d, e) => ParityChecks.Bf16Training(d, quick ? 4 : 16, quick, e));
OnDevice("speed_long_forward_mediator", (d, e) => SpeedChecks.LongForward(d, options, 64, e));
OnDevice("speed_long_forward_full", (d, e) => SpeedChecks.LongForward(d, options, 0, e));
OnDevice("speed_sampling_ladder", (d, e) => SpeedChecks.Sampling(d, options, e));
OnDevice("speed_training", (d, e) => SpeedChecks.Training(d, options, e));
// The same step with every bf16 operand rounded in a pass of its own (the same bits): what the producers' writing saves.
if (precision == MediatorDiT.Tensors.DevicePrecision.Bf16)
    OnDevice("speed_training_separate_roundings", (d, e) => SpeedChecks.Training(d, options, e, operandsFromProducers: false));
else report.Skip("speed_training_separate_roundings", "the speed cases run in fp32, where no operand is rounded");
// The same step with full attention's core as the fused tensor-core kernels (off by default until measured here).
if (precision == MediatorDiT.Tensors.DevicePrecision.Bf16)
    OnDevice("speed_training_fused_attention", (d, e) => SpeedChecks.Training(d, options, e, fusedAttention: true));
else report.Skip("speed_training_fused_attention", "the fused attention kernels take bf16 operands; the speed cases run in fp32");
// Last: NCCL initialises the CUDA runtime, which may make the device's primary context current on this thread.
OnDevice("nccl_one_rank", NcclChecks.OneRank);

var cases = (JsonObject)report.Root["cases"]!;
double? Rate(string name) => cases[name]?["images_per_second"]?.GetValueKind() == System.Text.Json.JsonValueKind.Number ? cases[name]!["images_per_second"]!.GetValue<double>() : null;
report.Root["long_forward_mediator_speedup"] = Rate("speed_long_forward_mediator") is double m && Rate("speed_long_forward_full") is double f ? m / f : null;
// The same ratio against full attention on the fused kernel, where it ran (the faster full attention, should it win).
report.Root["long_forward_mediator_speedup_over_fused"] = Rate("speed_long_forward_mediator") is double m2
    && cases["speed_long_forward_full"]?["fused_forward"] is JsonObject fusedFull && fusedFull["kernel_runs"]?.GetValue<bool>() == true
    && fusedFull["images_per_second"]?.GetValueKind() == System.Text.Json.JsonValueKind.Number
    ? m2 / fusedFull["images_per_second"]!.GetValue<double>() : null;
report.Root["training_speedup_of_fused_attention"] = Rate("speed_training_fused_attention") is double fusedRate && Rate("speed_training") is double tilesRate
    ? fusedRate / tilesRate : null;
report.Root["training_speedup_of_operands_from_producers"] = Rate("speed_training") is double fused && Rate("speed_training_separate_roundings") is double separate
    ? fused / separate : null;
report.Root["training_same_loss_both_roundings"] = cases["speed_training"]?["last_loss"] is { } l1 && cases["speed_training_separate_roundings"]?["last_loss"] is { } l2
    ? l1.ToJsonString() == l2.ToJsonString() : null;
// The fused kernels round P at another point than the tiles: the last losses agree to bf16 rounding, not to the bit.
report.Root["training_fused_attention_loss_difference"] = cases["speed_training"]?["last_loss"] is JsonValue tilesLoss
    && cases["speed_training_fused_attention"]?["last_loss"] is JsonValue fusedLoss
    && tilesLoss.TryGetValue(out double tiledValue) && fusedLoss.TryGetValue(out double fusedValue)
    ? Math.Abs(fusedValue - tiledValue) / Math.Abs(tiledValue) : null;
JsonArray Named(string status) => new(cases.Where(c => (string?)c.Value!["status"] == status).Select(c => (JsonNode)c.Key).ToArray());
report.Root["failed"] = Named("failed");
report.Root["skipped"] = Named("skipped");
device?.Dispose();
report.Root["finished"] = true;
report.Save(json);
report.Log($"wrote {json}; failed: {report.Root["failed"]!.ToJsonString()}, skipped: {report.Root["skipped"]!.ToJsonString()}");
return 0;
