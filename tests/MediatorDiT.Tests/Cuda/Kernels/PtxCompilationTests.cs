using System.Reflection;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace MediatorDiT.Tests.Cuda.Kernels;

/// <summary>
/// Every device kernel compiled by ILGPU's PTX back end for Hopper (sm_90, PTX ISA 8.8), without a GPU: the CPU accelerator runs
/// any .NET code, but the PTX back end refuses what it has no instruction for (MathF.Exp and MathF.Log among them)
/// and leaves what it cannot compile as an undefined external call (MathF.FusedMultiplyAdd), which the driver's JIT
/// refuses: the first GPU run met both only at the first launch. Kernels are found by reflection: every static void method
/// of a *Kernels class in MediatorDiT.Cuda that takes a device view; an ILGPU index first makes it implicitly grouped,
/// otherwise explicitly; generic ones (the GEMM) with each operand format.
/// </summary>
public class PtxCompilationTests
{
    private static readonly (Type Element, Type Widening)[] OperandFormats =
    [
        (typeof(float), typeof(MediatorDiT.Cuda.Blas.IlgpuGemm).Assembly.GetType("MediatorDiT.Cuda.Blas.Fp32Operands", throwOnError: true)!),
        (typeof(ushort), typeof(MediatorDiT.Cuda.Blas.IlgpuGemm).Assembly.GetType("MediatorDiT.Cuda.Blas.Bf16Operands", throwOnError: true)!),
    ];

    /// <summary>The kernels, each with its name for messages.</summary>
    public static IEnumerable<MethodInfo> Kernels()
    {
        var assembly = typeof(MediatorDiT.Cuda.CudaDevice).Assembly;
        foreach (var type in assembly.GetTypes().Where(t => t.Name.EndsWith("Kernels", StringComparison.Ordinal) && t.IsAbstract && t.IsSealed))
        foreach (var method in type.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.DeclaredOnly))
        {
            if (method.ReturnType != typeof(void) || method.IsSpecialName) continue;
            if (!method.GetParameters().Any(p => p.ParameterType.IsGenericType && p.ParameterType.GetGenericTypeDefinition() == typeof(ArrayView<>)
                                                || p.ParameterType.IsGenericParameter is false && p.ParameterType.Name.StartsWith("ArrayView", StringComparison.Ordinal)))
                continue;
            if (!method.IsGenericMethodDefinition) yield return method;
            else foreach (var (element, widening) in OperandFormats) yield return method.MakeGenericMethod(element, widening);
        }
    }

    [Fact]
    public void EveryKernelCompilesToPtxForHopper()
    {
        // As CudaDevice.Open builds it: with the PTX redirects of MediatorDiT.Cuda.Kernels.PtxIntrinsics.
        using var context = Context.Create(builder => MediatorDiT.Cuda.Kernels.PtxIntrinsics.Register(builder.Cuda()));
        using var backend = new PTXBackend(context, CudaArchitecture.SM_90, CudaInstructionSet.ISA_88, nvvmAPI: null!); // PTX from ILGPU's own back end, without NVVM
        var kernels = Kernels().ToArray();
        Assert.True(kernels.Length >= 60, $"only {kernels.Length} kernels were found: {string.Join(", ", kernels.Select(Name))}");
        var failures = new List<string>();
        foreach (var kernel in kernels)
        {
            bool implicitIndex = kernel.GetParameters()[0].ParameterType is var first && (first == typeof(Index1D) || first == typeof(Index2D) || first == typeof(Index3D));
            var entry = implicitIndex ? EntryPointDescription.FromImplicitlyGroupedKernel(kernel) : EntryPointDescription.FromExplicitlyGroupedKernel(kernel);
            try
            {
                var compiled = (PTXCompiledKernel)backend.Compile(entry, default(KernelSpecialization));
                // ILGPU targets the highest architecture whose features it uses (sm_80); the driver compiles that for the card.
                string ptx = compiled.PTXAssembly;
                Assert.True(ptx.Contains(".entry Kernel_" + kernel.Name, StringComparison.Ordinal), ptx[..Math.Min(300, ptx.Length)]);
                // A method ILGPU cannot compile (MathF.FusedMultiplyAdd, say) stays an undefined external function,
                // which the driver's JIT refuses when the kernel is loaded.
                int external = ptx.IndexOf(".extern .func", StringComparison.Ordinal);
                if (external >= 0) failures.Add($"{Name(kernel)}: calls an undefined external function: {ptx.Substring(external, Math.Min(120, ptx.Length - external)).ReplaceLineEndings(" ")}");
            }
            catch (Exception e)
            {
                var inner = e;
                while (inner.InnerException is not null) inner = inner.InnerException;
                failures.Add($"{Name(kernel)}: {inner.Message}");
            }
        }
        Assert.True(failures.Count == 0, $"{failures.Count} of {kernels.Length} kernels do not compile to PTX:\n" + string.Join("\n", failures));
    }

    private static string Name(MethodInfo m) =>
        $"{m.DeclaringType!.Name}.{m.Name}" + (m.IsGenericMethod ? $"<{string.Join(", ", m.GetGenericArguments().Select(a => a.Name))}>" : "");
}
