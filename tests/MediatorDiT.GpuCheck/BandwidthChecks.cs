using System.Text.Json.Nodes;
using ILGPU;
using ILGPU.Runtime;
using MediatorDiT.Cuda.Kernels;
using MediatorDiT.Cuda.Performance;

namespace MediatorDiT.GpuCheck;

/// <summary>
/// The card's memory bandwidth as the step's element kernels meet it: what the profile's stages outside the products
/// (moves, softmaxes, norms, GELU) can be held to. A device-to-device copy by the driver (its own kernel: read and
/// write), against the library's bf16 rounding kernel, a four-elements-per-thread kernel like the moves and GELU (4
/// bytes read and 2 written per element), interleaved over buffers far larger than any L2 cache.
/// </summary>
internal static class BandwidthChecks
{
    public static void Measure(CheckDevice device, bool quick, JsonObject entry)
    {
        var accelerator = device.Accelerator;
        long floats = quick ? 1L << 14 : 1L << 28; // 64 KiB (the CPU accelerator runs each thread as .NET code), or 1 GiB of fp32
        int repeats = quick ? 1 : 5, callsPerRun = quick ? 1 : 4;
        using var source = Filled<float>(accelerator, floats, 0x3F);
        using var target = Filled<float>(accelerator, floats, 0);
        using var halves = Filled<ushort>(accelerator, floats, 0);
        var kernels = new KernelSet(accelerator);
        var times = DeviceTiming.Interleaved(accelerator, 1, repeats, CancellationToken.None,
            () =>
            {
                for (int i = 0; i < callsPerRun; i++) source.View.CopyTo(target.View);
            },
            () =>
            {
                for (int i = 0; i < callsPerRun; i++) kernels.RoundToBf16(source.View, halves.View);
            });
        double Rate(double[] seconds, double bytesPerElement) => floats * bytesPerElement * callsPerRun / DeviceTiming.Median(seconds);
        double copy = Rate(times[0], 8), rounding = Rate(times[1], 6);
        entry["note"] = $"{floats * 4 >> 10} KiB of fp32 copied, and rounded to bf16, {callsPerRun} times per timed run, interleaved, median of {repeats}; bytes read plus bytes written per second";
        entry["elements"] = floats;
        entry["driver_copy_bytes_per_second"] = CheckReport.Number(copy);
        entry["rounding_kernel_bytes_per_second"] = CheckReport.Number(rounding);
        entry["rounding_kernel_of_driver_copy"] = CheckReport.Number(rounding / copy);
        entry["rounding_matches_its_formula"] = halves.View.SubView(0, 1).GetAsArray1D()[0] == Bf16.Round(BitConverter.Int32BitsToSingle(0x3F3F3F3F));
    }

    /// <summary>A buffer of at least one element with every byte <paramref name="value"/> (one device-side fill).</summary>
    internal static MemoryBuffer1D<T, Stride1D.Dense> Filled<T>(Accelerator accelerator, long length, byte value) where T : unmanaged
    {
        var buffer = accelerator.Allocate1D<T>(Math.Max(1, length));
        buffer.AsContiguous().MemSet(value);
        return buffer;
    }
}
