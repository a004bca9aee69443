using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using ILGPU;
using ILGPU.Backends;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;

namespace MediatorDiT.Cuda.Kernels;

/// <summary>
/// Moves ILGPU's inline-PTX operand slots from local memory into registers. ILGPU 1.5.3 passes every operand of an
/// inline instruction (<c>CudaAsm.EmitRef</c>: an mma's 4 accumulators and 6 operand registers, an ex2's 2, a cvt's 3)
/// through a 4-byte local variable of its own (<c>.local .align 4 .b8 __local_depotN[4]</c>, its address taken once by
/// <c>mov.b64 %rdA, __local_depotN</c>): stored before the instruction, loaded into a fresh register for it, stored back
/// and loaded again after it. NVIDIA's assembler does not promote these slots: ptxas for sm_90 gave the first fused
/// forward a stack frame of 3,480 bytes a thread, and each tensor-core instruction came with about 28 local loads and
/// stores, far more work for the load/store units than the instruction is for the tensor cores. Where a slot's address
/// is used by nothing but whole 32-bit loads and stores (<c>ld.local.f32 %x, [%rdA]</c>, <c>st.local.b32 [%rdA], v</c>),
/// it behaves exactly as a per-thread 32-bit register, and this rewrite makes it one (<c>mov.b32</c> in both
/// directions): the same kernel with no stack frame (PtxAssemblyTests holds the fused kernels to that). Any other use
/// leaves that slot as it was.
/// </summary>
internal static partial class InlineOperandSlots
{
    /// <summary>The registers that replace the slots: %operandSlotN for __local_depotN.</summary>
    private const string RegisterPrefix = "%operandSlot";

    [GeneratedRegex(@"^\s*\.local\s+\.align\s+4\s+\.b8\s+(__local_depot\d+)\[4\];\s*$")]
    private static partial Regex SlotDeclaration();

    [GeneratedRegex(@"^\s*mov\.b64\s+(%rd\d+),\s*(__local_depot\d+);\s*$")]
    private static partial Regex SlotAddress();

    [GeneratedRegex(@"^(\s*)ld\.local\.(?:f32|b32|u32|s32)\s+(%\w+),\s*\[(%rd\d+)\];\s*$")]
    private static partial Regex SlotLoad();

    [GeneratedRegex(@"^(\s*)st\.local\.(?:f32|b32|u32|s32)\s+\[(%rd\d+)\],\s*([^;]+);\s*$")]
    private static partial Regex SlotStore();

    [GeneratedRegex(@"%rd\d+|__local_depot\d+")]
    private static partial Regex Token();

    /// <summary>
    /// The PTX module with every slot that is only loaded and stored whole (see the class) in a register;
    /// <paramref name="promoted"/> counts them. Each function body (a "{" line to a "}" line at the margin, as ILGPU
    /// writes them) is rewritten on its own, since registers are named per function.
    /// </summary>
    public static string ToRegisters(string ptx, out int promoted)
    {
        ArgumentNullException.ThrowIfNull(ptx);
        string[] lines = ptx.Split('\n');
        var output = new List<string>(lines.Length);
        promoted = 0;
        for (int i = 0; i < lines.Length; i++)
        {
            output.Add(lines[i]);
            if (lines[i].TrimEnd('\r') != "{") continue;
            int end = i + 1;
            while (end < lines.Length && lines[end].TrimEnd('\r') != "}") end++;
            if (end == lines.Length) continue; // no closing line: left as it is
            output.AddRange(Body(lines.AsSpan(i + 1, end - i - 1), ref promoted));
            i = end - 1;
        }
        return string.Join('\n', output);
    }

    /// <summary>
    /// Whether the library loads <paramref name="kernel"/> through this rewrite (<see cref="Load"/>): the fused attention
    /// kernels (<see cref="FlashMmaKernels"/>), whose tensor-core instructions are inline PTX; every other kernel is
    /// loaded as ILGPU compiles it.
    /// </summary>
    public static bool Rewrites(MethodInfo kernel) => kernel.DeclaringType == typeof(FlashMmaKernels);

    /// <summary>
    /// The explicitly grouped <paramref name="kernel"/> compiled for <paramref name="accelerator"/> and loaded: on CUDA
    /// with its operand slots in registers (<see cref="InRegisters"/>), elsewhere as ILGPU compiles it. It is not in
    /// ILGPU's kernel cache: the caller keeps it, and the accelerator disposes it with itself.
    /// </summary>
    public static Kernel Load(Accelerator accelerator, MethodInfo kernel)
    {
        ArgumentNullException.ThrowIfNull(accelerator);
        var compiled = accelerator.CompileKernel(EntryPointDescription.FromExplicitlyGroupedKernel(kernel));
        return accelerator.LoadKernel(compiled is PTXCompiledKernel ptx ? InRegisters(ptx) : compiled);
    }

    /// <summary>
    /// The compiled kernel with its PTX rewritten (<see cref="ToRegisters"/>). ILGPU makes a compiled kernel only
    /// through internal members (the constructor and the entry point it takes), reached here by reflection: the
    /// package is pinned at 1.5.3, and the tests build one this way.
    /// </summary>
    public static PTXCompiledKernel InRegisters(PTXCompiledKernel kernel)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        var (entryPoint, constructor) = s_internals.Value;
        string ptx = ToRegisters(kernel.PTXAssembly, out _);
        return (PTXCompiledKernel)constructor.Invoke([kernel.Context, entryPoint.GetValue(kernel), kernel.Info, ptx]);
    }

    private static readonly Lazy<(PropertyInfo EntryPoint, ConstructorInfo Constructor)> s_internals = new(() =>
    {
        const BindingFlags Internal = BindingFlags.NonPublic | BindingFlags.Instance;
        var entryPoint = typeof(CompiledKernel).GetProperty("EntryPoint", Internal);
        var constructor = typeof(PTXCompiledKernel).GetConstructors(Internal).SingleOrDefault(c => c.GetParameters().Length == 4);
        if (entryPoint is null || constructor is null)
            throw new InvalidOperationException("this ILGPU has no internal CompiledKernel.EntryPoint or PTXCompiledKernel(context, entry point, info, PTX): MediatorDiT.Cuda needs ILGPU 1.5.3");
        return (entryPoint, constructor);
    });

    /// <summary>One function body's lines, its promotable slots in registers.</summary>
    private static List<string> Body(ReadOnlySpan<string> body, ref int promoted)
    {
        // Which slots are declared, and which address register each has (taken exactly once).
        var declared = new HashSet<string>(StringComparer.Ordinal);
        var addressOf = new Dictionary<string, string>(StringComparer.Ordinal); // %rdA -> __local_depotN
        var addresses = new Dictionary<string, int>(StringComparer.Ordinal);     // __local_depotN -> times its address is taken
        foreach (string line in body)
        {
            if (SlotDeclaration().Match(line) is { Success: true } d) declared.Add(d.Groups[1].Value);
            else if (SlotAddress().Match(line) is { Success: true } a)
            {
                addresses[a.Groups[2].Value] = addresses.GetValueOrDefault(a.Groups[2].Value) + 1;
                addressOf[a.Groups[1].Value] = a.Groups[2].Value;
            }
        }
        // A slot stays in memory if its address is taken twice, its register is written elsewhere, or either
        // appears anywhere but in its declaration, the one address move and whole 32-bit loads and stores.
        var refused = new HashSet<string>(StringComparer.Ordinal);
        foreach (string line in body)
        {
            if (SlotDeclaration().IsMatch(line)) continue;
            if (SlotAddress().Match(line) is { Success: true } a)
            {
                if (addresses[a.Groups[2].Value] != 1) refused.Add(a.Groups[2].Value);
                continue;
            }
            var access = SlotLoad().Match(line) is { Success: true } l ? l.Groups[3] : SlotStore().Match(line) is { Success: true } s ? s.Groups[2] : null;
            foreach (Match token in Token().Matches(line))
            {
                if (access is not null && token.Index == access.Index) continue; // the access's own address
                string slot = token.Value.StartsWith("__", StringComparison.Ordinal) ? token.Value : addressOf.GetValueOrDefault(token.Value) ?? "";
                if (slot.Length > 0) refused.Add(slot);
            }
        }
        var slots = declared.Where(d => addresses.GetValueOrDefault(d) == 1 && !refused.Contains(d)).ToHashSet(StringComparer.Ordinal);

        var result = new List<string>(body.Length + slots.Count);
        foreach (string slot in slots.OrderBy(s => int.Parse(s.AsSpan("__local_depot".Length), System.Globalization.CultureInfo.InvariantCulture)))
            result.Add($"\t.reg .b32 {Register(slot)};");
        foreach (string line in body)
        {
            if (SlotDeclaration().Match(line) is { Success: true } d && slots.Contains(d.Groups[1].Value)) continue;
            if (SlotAddress().Match(line) is { Success: true } a && slots.Contains(a.Groups[2].Value)) continue;
            if (SlotLoad().Match(line) is { Success: true } l && addressOf.TryGetValue(l.Groups[3].Value, out var loaded) && slots.Contains(loaded))
                result.Add($"{l.Groups[1].Value}mov.b32 {l.Groups[2].Value}, {Register(loaded)};");
            else if (SlotStore().Match(line) is { Success: true } s && addressOf.TryGetValue(s.Groups[2].Value, out var stored) && slots.Contains(stored))
                result.Add($"{s.Groups[1].Value}mov.b32 {Register(stored)}, {s.Groups[3].Value.Trim()};");
            else result.Add(line);
        }
        promoted += slots.Count;
        return result;
    }

    private static string Register(string slot) => RegisterPrefix + slot["__local_depot".Length..];
}
