using System.Text.Json.Nodes;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using MediatorDiT.Cuda.Blas;
using MediatorDiT.Cuda.Performance;
using MediatorDiT.Tensors;

namespace MediatorDiT.GpuCheck;

/// <summary>
/// The matrix products of one recorded call (a training step), replayed shape by shape: each distinct product's
/// time and FLOP rate, and the call's total (sum over shapes of calls x time), through cuBLAS with the workspace the
/// library gives it on this card and with cuBLAS's own pool, interleaved (on the CPU accelerator: the ILGPU products
/// only). The PyTorch script reads the shapes back from gpu-check.json and times torch's products on them.
/// </summary>
public static class ProductChecks
{
    /// <summary>Timed products per run: one synchronisation per run would otherwise weigh on the short ones.</summary>
    private const int CallsPerRun = 10;

    /// <summary>Replays <paramref name="products"/> on the device; the entry's "products" object.</summary>
    internal static JsonObject Replay(CheckDevice device, IReadOnlyList<RecordedProduct> products, bool quick)
    {
        var accelerator = device.Accelerator;
        var variants = new List<(string Name, string What, IDeviceGemm Gemm)>();
        try
        {
            if (accelerator is CudaAccelerator cuda)
            {
                var library = CublasGemm.Create(cuda);
                variants.Add(("library", $"cuBLAS with the library's workspace ({library.WorkspaceBytes >> 20} MiB; 0: cuBLAS's own pool)", library));
                variants.Add(("cublas_pool", "cuBLAS with its own default workspace pool", CublasGemm.Create(cuda, workspaceBytes: 0)));
            }
            else variants.Add(("library", "the ILGPU products (no cuBLAS on this accelerator)", DeviceGemms.For(accelerator)));
            return Time(accelerator, products, variants, quick ? 1 : CallsPerRun, quick ? 1 : 3);
        }
        finally
        {
            foreach (var (_, _, gemm) in variants) gemm.Dispose();
        }
    }

    private static JsonObject Time(Accelerator accelerator, IReadOnlyList<RecordedProduct> products, List<(string Name, string What, IDeviceGemm Gemm)> variants,
        int callsPerRun, int repeats)
    {
        // One set of operands for every shape, the largest extents, every byte 0x3F (bf16 0.746, fp32 0.747: values do
        // not change the speed, and a byte pattern is one device-side fill); C starts at zero.
        long Largest(Func<RecordedProduct, long> extent, DevicePrecision precision) =>
            products.Where(p => p.Precision == precision).Select(extent).DefaultIfEmpty(0).Max();
        long a16 = Largest(p => p.Shape.Extents().A, DevicePrecision.Bf16), b16 = Largest(p => p.Shape.Extents().B, DevicePrecision.Bf16);
        long a32 = Largest(p => p.Shape.Extents().A, DevicePrecision.Fp32), b32 = Largest(p => p.Shape.Extents().B, DevicePrecision.Fp32);
        long c = products.Select(p => p.Shape.Extents().C).DefaultIfEmpty(0).Max();
        const byte operand = 0x3F;
        using var aHalf = BandwidthChecks.Filled<ushort>(accelerator, a16, operand);
        using var bHalf = BandwidthChecks.Filled<ushort>(accelerator, b16, operand);
        using var aFloat = BandwidthChecks.Filled<float>(accelerator, a32, operand);
        using var bFloat = BandwidthChecks.Filled<float>(accelerator, b32, operand);
        using var cFloat = BandwidthChecks.Filled<float>(accelerator, c, 0);
        using var cHalf = BandwidthChecks.Filled<ushort>(accelerator, products.Where(p => p.Bf16Output).Select(p => p.Shape.Extents().C).DefaultIfEmpty(0).Max(), 0);

        var rows = new JsonArray();
        var totals = variants.ToDictionary(v => v.Name, _ => 0.0);
        double totalFlops = 0;
        foreach (var product in products.OrderByDescending(p => p.FlopsPerCall * p.Calls))
        {
            var shape = product.Shape;
            Action Run(IDeviceGemm gemm) => () =>
            {
                for (int i = 0; i < callsPerRun; i++)
                    if (product.Bf16Output) gemm.GemmBf16(shape, aHalf.AsContiguous(), bHalf.AsContiguous(), cHalf.AsContiguous());
                    else if (product.Precision == DevicePrecision.Bf16) gemm.GemmBf16(shape, aHalf.AsContiguous(), bHalf.AsContiguous(), cFloat.AsContiguous());
                    else gemm.Sgemm(shape, aFloat.AsContiguous(), bFloat.AsContiguous(), cFloat.AsContiguous());
            };
            var times = DeviceTiming.Interleaved(accelerator, 1, repeats, CancellationToken.None, variants.Select(v => Run(v.Gemm)).ToArray());
            var seconds = new JsonObject();
            var rates = new JsonObject();
            for (int v = 0; v < variants.Count; v++)
            {
                double perCall = DeviceTiming.Median(times[v]) / callsPerRun;
                seconds[variants[v].Name] = perCall;
                rates[variants[v].Name] = CheckReport.Number(product.FlopsPerCall / perCall);
                totals[variants[v].Name] += perCall * product.Calls;
            }
            totalFlops += product.FlopsPerCall * product.Calls;
            rows.Add(new JsonObject
            {
                ["precision"] = DevicePrecisions.Name(product.Precision),
                ["output"] = product.Bf16Output ? "bf16" : "fp32",
                ["trans_a"] = shape.TransA, ["trans_b"] = shape.TransB, ["m"] = shape.M, ["n"] = shape.N, ["k"] = shape.K, ["batch"] = shape.Batch,
                ["alpha"] = shape.Alpha, ["beta"] = shape.Beta,
                ["calls"] = product.Calls,
                ["flops_per_call"] = product.FlopsPerCall,
                ["seconds_per_call"] = seconds,
                ["flops_per_second"] = rates,
            });
        }
        return new JsonObject
        {
            ["note"] = $"each distinct product of the recorded call, {callsPerRun} calls per timed run, the variants interleaved, median of {repeats} runs; "
                + "operands with every byte 0x3F (bf16 0.746, fp32 0.747), C reused; the call's total is the sum over products of calls x seconds per call",
            ["variants"] = new JsonObject(variants.Select(v => KeyValuePair.Create(v.Name, (JsonNode?)v.What))),
            ["distinct_products"] = products.Count,
            ["calls"] = products.Sum(p => p.Calls),
            ["flops"] = totalFlops,
            ["seconds"] = new JsonObject(totals.Select(t => KeyValuePair.Create(t.Key, (JsonNode?)t.Value))),
            ["flops_per_second"] = new JsonObject(totals.Select(t => KeyValuePair.Create(t.Key, (JsonNode?)CheckReport.Number(totalFlops / t.Value)))),
            ["shapes"] = rows,
        };
    }
}
