using ILGPU.Runtime.Cuda;
using MediatorDiT.Cuda.Kernels;

namespace MediatorDiT.Tests.Cuda.Kernels;

/// <summary>
/// <see cref="InlineOperandSlots"/>: ILGPU's local-memory slot per inline-instruction operand made a register where
/// only whole 32-bit loads and stores use it, on hand-written PTX and on the fused attention kernels' own.
/// </summary>
public class InlineOperandSlotsTests
{
    [Fact]
    public void ToRegisters_PromotesSlotsOnlyLoadedAndStoredWhole_AndLeavesEveryOtherSlot()
    {
        string ptx = string.Join('\n',
            ".visible .entry Kernel_K(",
            "\t.param .b32 _n",
            ")",
            "{",
            "\t.local .align 4 .b8 __local_depot0[4];",   // promoted: f32 and b32 accesses only
            "\t.local .align 4 .b8 __local_depot1[4];",   // kept: its address is offset
            "\t.local .align 4 .b8 __local_depot2[4];",   // kept: read as 16 bits
            "\t.local .align 4 .b8 __local_depot3[4];",   // promoted
            "\t.local .align 4 .b8 __local_depot4[8];",   // kept: not a 4-byte slot
            "\t.reg .b32\t%r<9>;",
            "\t.reg .b64\t%rd<9>;",
            "\t.reg .f32\t%f<9>;",
            "\tmov.b64\t%rd1, __local_depot0;",
            "\tmov.b64\t%rd2, __local_depot1;",
            "\tmov.b64\t%rd3, __local_depot2;",
            "\tmov.b64\t%rd4, __local_depot3;",
            "\tmov.b64\t%rd5, __local_depot4;",
            "\tst.local.f32\t[%rd1], 0f3F800000;",
            "\tst.local.b32\t[%rd4], %r1;",
            "\tld.local.f32\t%f1, [%rd1];",
            "\tld.local.b32\t%r2, [%rd4];",
            "\tadd.u64\t%rd6, %rd2, 4;",
            "\tst.local.f32\t[%rd2], %f1;",
            "\tld.local.u16\t%rs1, [%rd3];",
            "\tst.local.b32\t[%rd5], %r2;",
            "\tst.local.b32\t[%rd10], %r2;",               // through a pointer of its own: not a slot's
            "\tret;",
            "}",
            "");
        string rewritten = InlineOperandSlots.ToRegisters(ptx, out int promoted);

        Assert.Equal(2, promoted);
        string expected = string.Join('\n',
            ".visible .entry Kernel_K(",
            "\t.param .b32 _n",
            ")",
            "{",
            "\t.reg .b32 %operandSlot0;",
            "\t.reg .b32 %operandSlot3;",
            "\t.local .align 4 .b8 __local_depot1[4];",
            "\t.local .align 4 .b8 __local_depot2[4];",
            "\t.local .align 4 .b8 __local_depot4[8];",
            "\t.reg .b32\t%r<9>;",
            "\t.reg .b64\t%rd<9>;",
            "\t.reg .f32\t%f<9>;",
            "\tmov.b64\t%rd2, __local_depot1;",
            "\tmov.b64\t%rd3, __local_depot2;",
            "\tmov.b64\t%rd5, __local_depot4;",
            "\tmov.b32 %operandSlot0, 0f3F800000;",
            "\tmov.b32 %operandSlot3, %r1;",
            "\tmov.b32 %f1, %operandSlot0;",
            "\tmov.b32 %r2, %operandSlot3;",
            "\tadd.u64\t%rd6, %rd2, 4;",
            "\tst.local.f32\t[%rd2], %f1;",
            "\tld.local.u16\t%rs1, [%rd3];",
            "\tst.local.b32\t[%rd5], %r2;",
            "\tst.local.b32\t[%rd10], %r2;",
            "\tret;",
            "}",
            "");
        Assert.Equal(expected, rewritten);
        Assert.Equal(rewritten, InlineOperandSlots.ToRegisters(rewritten, out int again)); // nothing left to promote
        Assert.Equal(0, again);
    }

    [Fact]
    public void ToRegisters_RewritesEachFunctionOnItsOwn()
    {
        // Registers are named per function: %rd1 is slot 0's address in the first, an ordinary pointer in the second.
        string ptx = string.Join('\n',
            ".func F()", "{", "\t.local .align 4 .b8 __local_depot0[4];", "\tmov.b64\t%rd1, __local_depot0;",
            "\tst.local.f32\t[%rd1], %f1;", "\tld.local.f32\t%f2, [%rd1];", "}",
            ".visible .entry Kernel_K()", "{", "\tst.local.f32\t[%rd1], %f1;", "\tld.local.f32\t%f2, [%rd1];", "}");
        string rewritten = InlineOperandSlots.ToRegisters(ptx, out int promoted);

        Assert.Equal(1, promoted);
        Assert.Equal(string.Join('\n',
            ".func F()", "{", "\t.reg .b32 %operandSlot0;", "\tmov.b32 %operandSlot0, %f1;", "\tmov.b32 %f2, %operandSlot0;", "}",
            ".visible .entry Kernel_K()", "{", "\tst.local.f32\t[%rd1], %f1;", "\tld.local.f32\t%f2, [%rd1];", "}"), rewritten);
    }

    [Theory]
    [InlineData(nameof(FlashMmaKernels.Forward))]
    [InlineData(nameof(FlashMmaKernels.BackwardKeys))]
    [InlineData(nameof(FlashMmaKernels.BackwardQueries))]
    public void FusedAttentionKernels_KeepEveryOperandInRegisters_AndTheirInstructions(string name)
    {
        using var context = PtxCompilationTests.PtxContext();
        using var backend = PtxCompilationTests.Backend(context, CudaInstructionSet.ISA_88);
        var compiled = PtxCompilationTests.Compile(backend, FlashMmaKernels.Instance(name, typeof(AnyFlashHead)));
        var loaded = InlineOperandSlots.InRegisters(compiled);

        string before = compiled.PTXAssembly, after = loaded.PTXAssembly;
        int Count(string text, string what) => text.Split(what).Length - 1;
        int slots = Count(before, ".local .align 4 .b8 __local_depot");
        Assert.True(slots > 100, $"{name}: only {slots} operand slots");
        Assert.Equal(0, Count(after, ".local"));
        Assert.Equal(slots, Count(after, ".reg .b32 %operandSlot"));
        // Every access became a move; nothing else changed.
        Assert.Equal(Count(before, "ld.local.") + Count(before, "st.local."), Count(after, "mov.b32 %"));
        foreach (string instruction in new[] { "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32", "ex2.approx.ftz.f32", "bar.sync", "ld.shared", "st.global" })
            Assert.Equal(Count(before, instruction), Count(after, instruction));
        // The same entry point: name and parameters as ILGPU compiled them, for its launcher.
        Assert.Equal(compiled.Name, loaded.Name);
        Assert.Equal(compiled.NumParameters, loaded.NumParameters);
        Assert.Equal(compiled.Specialization, loaded.Specialization);
        // The library loads it through the rewrite (PtxAssemblyTests holds every other kernel to no local memory as compiled).
        Assert.True(InlineOperandSlots.Rewrites(compiled.SourceMethod), $"{name} is loaded through the rewrite");
    }
}
