using System.Reflection;
using ILGPU;
using ILGPU.Frontend;
using ILGPU.Frontend.Intrinsic;

namespace MediatorDiT.Cuda.Kernels;

/// <summary>
/// What ILGPU 1.5's compiler cannot translate by itself and the kernels use: MathF.FusedMultiplyAdd, a runtime
/// intrinsic without IL, which it leaves as a call of an undefined external function that the driver's JIT refuses.
/// <see cref="Register"/> (on every context that compiles kernels for a GPU, before the first kernel) remaps the call
/// in ILGPU's front end to a * b + c written as a plain multiply and add: PTX's mul.f32 and add.f32 without a rounding
/// mode may be fused, and the driver's compiler fuses such a pair into one fma.rn.f32 (one rounding, as
/// MathF.FusedMultiplyAdd). ILGPU's CPU accelerator runs the kernels' .NET code as it is and keeps
/// MathF.FusedMultiplyAdd. Natural exp and log have no PTX instruction either: the kernels use
/// <see cref="DeviceMath.Exp"/> and <see cref="DeviceMath.Log"/>.
/// </summary>
internal static class PtxIntrinsics
{
    private static readonly MethodInfo FusedMultiplyAdd =
        typeof(MathF).GetMethod(nameof(MathF.FusedMultiplyAdd), [typeof(float), typeof(float), typeof(float)])!;

    private static readonly MethodInfo MultiplyAddMethod =
        typeof(PtxIntrinsics).GetMethod(nameof(MultiplyAdd), BindingFlags.Public | BindingFlags.Static)!;

    private static readonly Lazy<bool> Remapped = new(() =>
    {
        // ILGPU keeps its front end's remappings in one table per process; setting this entry again changes nothing.
        RemappedIntrinsics.AddRemapping(FusedMultiplyAdd, (ref InvocationContext context) => context.Method = MultiplyAddMethod);
        return true;
    });

    /// <summary>Makes sure the remapping is in place before the context being built compiles a kernel.</summary>
    public static Context.Builder Register(Context.Builder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        _ = Remapped.Value;
        return builder;
    }

    /// <summary>The compiled stand-in for MathF.FusedMultiplyAdd (see the class).</summary>
    public static float MultiplyAdd(float a, float b, float c) => a * b + c;
}
