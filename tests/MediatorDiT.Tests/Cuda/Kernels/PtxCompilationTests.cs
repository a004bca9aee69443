using System.Reflection;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using MediatorDiT.Cuda.Kernels;

namespace MediatorDiT.Tests.Cuda.Kernels;

/// <summary>
/// Every device kernel compiled by ILGPU's PTX back end for Hopper (sm_90, PTX ISA 8.8), without a GPU: the CPU accelerator runs
/// any .NET code, but the PTX back end refuses what it has no instruction for (MathF.Exp and MathF.Log among them)
/// and leaves what it cannot compile as an undefined external call (MathF.FusedMultiplyAdd), which the driver's JIT
/// refuses: the first GPU run met both only at the first launch. Kernels are found by reflection: every static void method
/// of a *Kernels class in MediatorDiT.Cuda that takes a device view; an ILGPU index first makes it implicitly grouped,
/// otherwise explicitly; generic ones (the GEMM, GELU over fp32 or bf16 inputs) with every pairing of element types and
/// formats their constraints accept.
/// </summary>
public class PtxCompilationTests
{
    /// <summary>(element type, format) pairs a generic kernel takes as type arguments: operand widenings, result formats.</summary>
    private static readonly (Type Element, Type Format)[] Formats =
    [
        (typeof(float), Format("Blas.Fp32Operands")), (typeof(ushort), Format("Blas.Bf16Operands")),
        (typeof(float), Format("Kernels.Fp32Results")), (typeof(ushort), Format("Kernels.Bf16Results")),
    ];

    private static Type Format(string name) => typeof(MediatorDiT.Cuda.Blas.IlgpuGemm).Assembly.GetType("MediatorDiT.Cuda." + name, throwOnError: true)!;

    /// <summary>
    /// Every instantiation of a generic kernel: the fused attention kernels once per head type (<see cref="FlashHeads.All"/>);
    /// the others, whose type parameters come in (element, format) pairs, with every pairing their constraints accept.
    /// </summary>
    private static IEnumerable<MethodInfo> Instantiations(MethodInfo method)
    {
        if (method.GetGenericArguments() is [var head] && head.GetGenericParameterConstraints().Contains(typeof(IFlashHead)))
        {
            foreach (var type in FlashHeads.All) yield return method.MakeGenericMethod(type);
            yield break;
        }
        int pairs = method.GetGenericArguments().Length / 2;
        IEnumerable<Type[]> lists = [[]];
        for (int i = 0; i < pairs; i++) lists = lists.SelectMany(list => Formats.Select(f => (Type[])[.. list, f.Element, f.Format]));
        foreach (var arguments in lists)
        {
            MethodInfo? instance;
            try { instance = method.MakeGenericMethod(arguments); }
            catch (ArgumentException) { instance = null; } // a pairing the constraints refuse
            if (instance is not null) yield return instance;
        }
    }

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
            else foreach (var instance in Instantiations(method)) yield return instance;
        }
    }

    [Fact]
    public void EveryKernelCompilesToPtxForHopper()
    {
        using var context = PtxContext();
        using var backend = Backend(context, CudaInstructionSet.ISA_88);
        var kernels = Kernels().ToArray();
        Assert.True(kernels.Length >= 60, $"only {kernels.Length} kernels were found: {string.Join(", ", kernels.Select(Name))}");
        var failures = new List<string>();
        foreach (var kernel in kernels)
        {
            try
            {
                var compiled = Compile(backend, kernel);
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

    [Theory]
    // Packs: each operand fragment made from accumulators (P, or P^T and dS^T, or dS) is 4 cvt.rn.bf16x2 of 2 values.
    [InlineData("Forward", 8 * 5 + 10 * 4, 8 * 4 + 2, 4 * 4)] // S: 8 key tiles x 5 k-steps; P V: 10 channel tiles x 4 key steps; 32 exponentials a lane and 2 corrections; P's 4 fragments
    [InlineData("BackwardKeys", 4 * 5 * 2 + 10 * 2 * 2, 4 * 4, 2 * 2 * 4)] // S^T and dP^T: 4 query tiles x 5 k-steps; dV and dK: 10 channel tiles x 2 query steps; P^T's and dS^T's 2 fragments
    [InlineData("BackwardQueries", 4 * 5 * 2 + 10 * 2, 4 * 4, 2 * 4)] // S and dP: 4 key tiles x 5 k-steps; dQ: 10 channel tiles x 2 key steps; dS's 2 fragments
    public void FlashKernels_IssueTheTensorCoreInstruction_AndKeepTheirFragmentsInRegisters(string name, int mmas, int exponentials, int packs)
    {
        // The fragments (operands, logits, accumulators) are struct fields written out tile by tile (ILGPU does not
        // unroll loops): any of them indexed at run time would be a local array. The only local memory is ILGPU's one
        // 4-byte slot per operand of each inline instruction (an mma's 4 accumulators and 6 operand registers, an ex2's
        // 2, a cvt's 3), which the library moves into registers before the driver sees the PTX (InlineOperandSlotsTests).
        using var context = PtxContext();
        using var backend = Backend(context, CudaInstructionSet.ISA_88);
        // For any head width (AnyFlashHead): every fragment of the widest head, each behind its run-time test.
        string ptx = Compile(backend, FlashMmaKernels.Instance(name, typeof(AnyFlashHead))).PTXAssembly;
        Assert.Equal(mmas, ptx.Split("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32").Length - 1);
        Assert.Equal(exponentials, ptx.Split("ex2.approx.ftz.f32").Length - 1);
        Assert.Equal(packs, ptx.Split("cvt.rn.bf16x2.f32").Length - 1);
        var locals = System.Text.RegularExpressions.Regex.Matches(ptx, @"\.local \.align \d+ \.b8 __local_depot\d+\[(\d+)\]");
        Assert.Equal(10 * mmas + 2 * exponentials + 3 * packs, locals.Count);
        Assert.All(locals, local => Assert.Equal("4", local.Groups[1].Value));
        Assert.Equal(locals.Count, System.Text.RegularExpressions.Regex.Matches(ptx, @"\.local ").Count);
        Assert.Matches(@"\.target sm_(8\d|9\d)", ptx);
    }

    /// <summary>A context as CudaDevice.Open builds it: with the PTX redirects of MediatorDiT.Cuda.Kernels.PtxIntrinsics.</summary>
    internal static Context PtxContext() => Context.Create(builder => MediatorDiT.Cuda.Kernels.PtxIntrinsics.Register(builder.Cuda()));

    /// <summary>ILGPU's own PTX back end (without NVVM) for Hopper at the given PTX ISA.</summary>
    internal static PTXBackend Backend(Context context, CudaInstructionSet isa) => new(context, CudaArchitecture.SM_90, isa, nvvmAPI: null!);

    /// <summary>The kernel compiled to PTX, implicitly grouped where its first parameter is an ILGPU index, else explicitly.</summary>
    internal static PTXCompiledKernel Compile(PTXBackend backend, MethodInfo kernel)
    {
        bool implicitIndex = kernel.GetParameters()[0].ParameterType is var first && (first == typeof(Index1D) || first == typeof(Index2D) || first == typeof(Index3D));
        var entry = implicitIndex ? EntryPointDescription.FromImplicitlyGroupedKernel(kernel) : EntryPointDescription.FromExplicitlyGroupedKernel(kernel);
        return (PTXCompiledKernel)backend.Compile(entry, default(KernelSpecialization));
    }

    internal static string Name(MethodInfo m) =>
        $"{m.DeclaringType!.Name}.{m.Name}" + (m.IsGenericMethod ? $"<{string.Join(", ", m.GetGenericArguments().Select(a => a.Name))}>" : "");
}
