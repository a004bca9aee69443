using System.Diagnostics;
using System.Text.Json.Nodes;
using MediatorDiT.Cuda.Models;

namespace MediatorDiT.Tests.Cuda;

/// <summary>
/// The device check (MediatorDiT.GpuCheck, docs/GPU.md "The device check") run as a child process on ILGPU's CPU
/// accelerator with --quick: its JSON holds every case, the parity errors within the issue's bounds (forward 1e-4,
/// gradients and weights 1e-3, loss and gradient norm 1e-4 relative), bf16 against fp32 within the library's bf16 bound
/// (the speed cases run in bf16) and finite, positive rates. No timing is asserted.
/// </summary>
public class GpuCheckTests
{
    private static readonly string[] SpeedCases =
        ["speed_long_forward_mediator", "speed_long_forward_full", "speed_sampling_ladder", "speed_training", "speed_training_separate_roundings",
            "speed_training_fused_attention"];

    [Fact]
    public async Task QuickCheckOnTheCpuAccelerator_WritesEveryCaseWithinTheBounds()
    {
        string outDir = Path.Combine(Path.GetTempPath(), $"mdit-gpucheck-{Guid.NewGuid():N}");
        try
        {
            var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (string arg in new[] { Path.Combine(AppContext.BaseDirectory, "MediatorDiT.GpuCheck.dll"), "--out", outDir, "--accelerator", "cpu", "--quick", "--fixtures", Fixtures.Dir, "--precision", "bf16",
                         "--budget-seconds", "600" }) // every case starts within the hang guard below, not the check's default 360 s
                psi.ArgumentList.Add(arg);
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            // Alone it takes about a minute; beside the suite's other classes on CI's two cores, in the pass with
            // AVX-512 off and poisoned allocations, 3 to 5. The limit only keeps a hung check from hanging the suite.
            if (!p.WaitForExit(600_000))
            {
                p.Kill(entireProcessTree: true); // not left running after the test
                Assert.Fail("the check did not finish in 600 s");
            }
            Assert.True(p.ExitCode == 0, await stderr + await stdout);

            var root = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "gpu-check.json")))!;
            var cases = root["cases"]!.AsObject();
            Assert.True(root["quick"]!.GetValue<bool>());
            Assert.Equal("cpu", (string?)root["accelerator"]);
            Assert.Equal("bf16", (string?)root["speed_precision"]);
            Assert.Empty(root["failed"]!.AsArray());
            Assert.Equal(["fused_attention_kernels", "parity_forward_mediator_grid8_m16", "parity_forward_full_grid8", "parity_forward_dit_model"],
                root["skipped"]!.AsArray().Select(n => (string)n!));

            Assert.Equal("ok", (string?)cases["libraries"]!["status"]);
            Assert.NotNull(cases["libraries"]!["complete"]);
            var device = cases["device"]!;
            Assert.Equal("cpu", (string?)device["accelerator"]);
            Assert.True(device["multiprocessors"]!.GetValue<int>() >= 1);

            // The fused kernels' registers and local memory come from the driver: a card only, skipped here saying so.
            Assert.Equal("skipped", (string?)cases["fused_attention_kernels"]!["status"]);
            Assert.Contains("CUDA device only", (string?)cases["fused_attention_kernels"]!["error"]);
            var bandwidth = Ok(cases, "bandwidth");
            Assert.True(Finite(bandwidth, "driver_copy_bytes_per_second") > 0 && Finite(bandwidth, "rounding_kernel_bytes_per_second") > 0);
            Assert.Equal(Finite(bandwidth, "rounding_kernel_bytes_per_second") / Finite(bandwidth, "driver_copy_bytes_per_second"),
                Finite(bandwidth, "rounding_kernel_of_driver_copy"), 1e-9);
            Assert.True(bandwidth["rounding_matches_its_formula"]!.GetValue<bool>(), "the timed rounding kernel wrote the wrong value");

            var forward = Ok(cases, "parity_forward_mediator_grid4_m4");
            foreach (string key in new[] { "out_vs_fixture", "out_vs_cpu", "cfg_out_vs_fixture", "cfg_out_vs_cpu" })
                AssertBelow(forward, key, 1e-4);
            Assert.True(forward["pass"]!.GetValue<bool>());

            // bf16 products move the fixture's output, but within the library's bf16 bound.
            var bf16 = Ok(cases, "parity_bf16_forward");
            Assert.True(Finite(bf16, "out_bf16_vs_fp32") > 0, "bf16 gave fp32's bits");
            AssertBelow(bf16, "out_bf16_vs_fp32", 3e-2);
            AssertBelow(bf16, "cfg_out_bf16_vs_fp32", 3e-2 * 7); // guidance at scale 4 multiplies it by at most 2s - 1
            Assert.True(bf16["pass"]!.GetValue<bool>());

            foreach (string name in new[] { "parity_training_full", "parity_training_mediator" })
            {
                var training = Ok(cases, name);
                AssertBelow(training, "loss_max_rel_diff", 1e-4);
                AssertBelow(training, "grad_norm_max_rel_diff", 1e-4);
                AssertBelow(training, "grad_max_rel_diff", 1e-3);
                AssertBelow(training, "weight_max_rel_diff", 1e-3);
                AssertBelow(training, "ema_max_rel_diff", 1e-3);
                Assert.Equal(3, training["steps"]!.AsArray().Count);
                Assert.True(training["pass"]!.GetValue<bool>());
            }

            // bf16 training against fp32 on the same device: within the library's bf16 bounds, and not equal (the bf16
            // products ran); the default bf16 step against the one rounding each operand in a pass of its own: the same
            // bits on the CPU accelerator.
            foreach (var (name, keptP) in new[] { ("parity_bf16_training_full", false), ("parity_bf16_training_kept_p", true), ("parity_bf16_training_mediator", false) })
            {
                var training = Ok(cases, name);
                Assert.Equal(keptP, training["probabilities_kept"]!.GetValue<bool>());
                Assert.True(Finite(training, "loss_bf16_vs_fp32") > 0, $"{name}: bf16 gave fp32's loss");
                AssertBelow(training, "loss_bf16_vs_fp32", 2e-2);
                AssertBelow(training, "grad_norm_bf16_vs_fp32", 5e-2);
                double weightBound = Finite(training, "weight_bound");
                Assert.Equal(2 * 3 * 1e-3 * 0.1 / Math.Sqrt(0.001), weightBound, 12);
                Assert.True(Finite(training, "weights_bf16_vs_fp32") > 0, $"{name}: bf16 left fp32's weights");
                AssertBelow(training, "weights_bf16_vs_fp32", weightBound);
                foreach (string key in new[] { "loss_bf16_vs_separate_roundings", "grad_norm_bf16_vs_separate_roundings", "weights_bf16_vs_separate_roundings" })
                    Assert.Equal(0.0, Finite(training, key));
                var steps = training["steps"]!.AsArray();
                Assert.Equal(3, steps.Count);
                Assert.All(steps, s => Assert.Equal(Finite(s!, "bf16_loss"), Finite(s!, "bf16_separate_roundings_loss")));
                Assert.True(training["pass"]!.GetValue<bool>());
            }

            foreach (string name in SpeedCases)
            {
                var speed = Ok(cases, name);
                Assert.True(Finite(speed, "images_per_second") > 0, $"{name}: images_per_second");
                Assert.Equal("bf16", (string?)speed["precision"]);
                Assert.True(Finite(speed, "achieved_flops_per_second") > 0, $"{name}: achieved_flops_per_second");
                Assert.Null(speed["device_memory_used_bytes"]); // not measurable on the CPU accelerator
                if (speed["finite_fraction"] is { } finite) Assert.Equal(1.0, finite.GetValue<double>());
            }
            var train = cases["speed_training"]!;
            Assert.Equal(3 * Finite(train, "batch") * Finite(train, "forward_flops_per_image"), Finite(train, "flops_per_step"));
            Assert.Equal(Finite(train, "flops_per_step") / Finite(train, "median_step_seconds"), Finite(train, "achieved_flops_per_second"), 6);
            // MFU's limits: the CPU accelerator is no card of the peak table, so H200's stand in, and the report says so.
            var peaks = root["peaks"]!;
            Assert.False(peaks["known"]!.GetValue<bool>());
            Assert.Equal(989e12, Finite(peaks, "bf16_flops_per_second"));
            Assert.Equal(67e12, Finite(peaks, "fp32_flops_per_second"));
            Assert.Contains("not in the peak table", (string?)peaks["what"]);
            Assert.Equal(Finite(train, "achieved_flops_per_second") / 67e12, Finite(train, "mfu_of_fp32_peak"), 12);
            Assert.Equal(Finite(train, "achieved_flops_per_second") / 989e12, Finite(train, "mfu_of_bf16_peak"), 12);
            var sampling = cases["speed_sampling_ladder"]!;
            Assert.Equal(Finite(sampling, "seconds_per_step") * 250, Finite(sampling, "extrapolated_seconds"), 9);
            Assert.True(double.IsFinite(root["long_forward_mediator_speedup"]!.GetValue<double>()));
            Assert.Equal(Finite(cases["speed_long_forward_mediator"]!, "images_per_second") / Finite(cases["speed_long_forward_full"]!, "images_per_second"),
                Finite(root, "long_forward_mediator_speedup"), 12);
            Assert.Null(root["long_forward_mediator_speedup_over_fused"]); // the fused kernel does not run on 4-lane warps
            // Full attention's calls timed again with smaller tiles (quick: one item per tile).
            foreach (string name in new[] { "speed_training", "speed_long_forward_full" })
            {
                var sweep = cases[name]!["tile_sweep"]!;
                Assert.Equal(AttentionProducts.DefaultTileFloats, sweep["default_tile_floats"]!.GetValue<long>());
                var tiles = sweep["tiles"]!.AsArray();
                Assert.Single(tiles);
                Assert.Equal(1, tiles[0]!["items_per_tile"]!.GetValue<int>());
                Assert.All(tiles, t => Assert.True(Finite(t!, "images_per_second") > 0));
            }
            Assert.Null(cases["speed_long_forward_mediator"]!["tile_sweep"]);
            // The full-attention forward again with the fused kernel: the check's CPU accelerator has 4-lane warps, so the
            // tiles ran in its place, to the same bits (on a card the kernel runs and differs by bf16 rounding).
            var fused = cases["speed_long_forward_full"]!["fused_forward"]!;
            Assert.False(fused["kernel_runs"]!.GetValue<bool>());
            Assert.Equal(0.0, Finite(fused, "difference_from_tiles"));
            Assert.True(Finite(fused, "images_per_second") > 0);
            Assert.True(fused["pass"]!.GetValue<bool>());
            Assert.Null(cases["speed_long_forward_mediator"]!["fused_forward"]);
            // The training step's products replayed shape by shape: the shapes add up to the totals, bf16 products among them.
            var products = train["products"]!;
            var shapes = products["shapes"]!.AsArray();
            Assert.Equal(products["distinct_products"]!.GetValue<int>(), shapes.Count);
            Assert.Equal(products["calls"]!.GetValue<int>(), shapes.Sum(p => p!["calls"]!.GetValue<int>()));
            Assert.Equal(Finite(products, "flops"), shapes.Sum(p => Finite(p!, "flops_per_call") * p!["calls"]!.GetValue<int>()), 6);
            Assert.Equal(Finite(products["seconds"]!, "library"), shapes.Sum(p => Finite(p!["seconds_per_call"]!, "library") * p!["calls"]!.GetValue<int>()), 9);
            Assert.Contains(shapes, p => (string?)p!["precision"] == "bf16");
            Assert.Contains(shapes, p => (string?)p!["precision"] == "fp32"); // the bias gradients' column sums stay fp32
            Assert.True(Finite(products["flops_per_second"]!, "library") > 0);
            // The operands rounded by their producers or in passes of their own: the same training step, bit for bit.
            Assert.True(root["training_same_loss_both_roundings"]!.GetValue<bool>());
            Assert.Equal(Finite(train, "last_loss"), Finite(cases["speed_training_separate_roundings"]!, "last_loss"));
            Assert.True(Finite(root, "training_speedup_of_operands_from_producers") > 0);
            // The step with the fused attention kernels: on 4-lane warps the tiles run in their place, to the same bits.
            var fusedTraining = cases["speed_training_fused_attention"]!;
            Assert.False(fusedTraining["fused_kernels_run"]!.GetValue<bool>());
            Assert.Equal(0.0, Finite(root, "training_fused_attention_loss_difference"));
            Assert.True(Finite(root, "training_speedup_of_fused_attention") > 0);
            Assert.Null(fusedTraining["tile_sweep"]);
        }
        finally
        {
            if (Directory.Exists(outDir)) Directory.Delete(outDir, recursive: true);
        }
    }

    [Theory]
    [InlineData("NVIDIA H100 80GB HBM3", 989e12, 67e12, true)]
    [InlineData("NVIDIA H100 PCIe", 756e12, 51e12, true)]
    [InlineData("NVIDIA A100-SXM4-80GB", 312e12, 19.5e12, true)]
    [InlineData("NVIDIA H200 NVL", 989e12, 67e12, false)]
    public void CheckPeaks_AreTheCardsOwnWhereTheTableKnowsIt(string name, double bf16, double fp32, bool known)
    {
        var peaks = MediatorDiT.GpuCheck.CheckPeaks.For(name);
        Assert.Equal((bf16, fp32, known), (peaks.Bf16, peaks.Fp32, peaks.Known));
        Assert.Equal(known, !peaks.Description.Contains("not in the peak table"));
    }

    [Fact]
    public void CasesAsked_RunWithTheDevice_AndTheOthersAreSkippedSayingWhy()
    {
        var log = new StringWriter();
        var report = new MediatorDiT.GpuCheck.CheckReport(60, log) { Only = ["parity_bf16", "speed_training"] };
        var ran = new List<string>();
        foreach (string name in new[] { "libraries", "device", "parity_forward_dit_model", "parity_bf16_training_full", "speed_training", "speed_training_separate_roundings", "nccl_one_rank" })
            report.Run(name, _ => ran.Add(name));
        Assert.Equal(["libraries", "device", "parity_bf16_training_full", "speed_training", "speed_training_separate_roundings"], ran);
        var cases = report.Root["cases"]!.AsObject();
        foreach (string name in new[] { "parity_forward_dit_model", "nccl_one_rank" })
        {
            Assert.Equal("skipped", (string?)cases[name]!["status"]);
            Assert.Equal("not among --cases parity_bf16,speed_training", (string?)cases[name]!["error"]);
        }
        Assert.Equal("ok", (string?)cases["speed_training"]!["status"]);
    }

    private static JsonNode Ok(JsonObject cases, string name)
    {
        var entry = cases[name];
        Assert.True(entry is not null, $"case {name} is missing");
        Assert.True((string?)entry["status"] == "ok", $"case {name}: {entry["status"]} {entry["error"]}");
        return entry;
    }

    private static double Finite(JsonNode entry, string key)
    {
        var value = entry[key];
        Assert.True(value is not null && value.GetValueKind() == System.Text.Json.JsonValueKind.Number, $"{key} is not a number: {value?.ToJsonString()}");
        double v = value!.GetValue<double>();
        Assert.True(double.IsFinite(v), $"{key} = {v}");
        return v;
    }

    private static void AssertBelow(JsonNode entry, string key, double bound)
    {
        double v = Finite(entry, key);
        Assert.True(v >= 0 && v <= bound, $"{key} = {v:E3} exceeds {bound:E0}");
    }
}
