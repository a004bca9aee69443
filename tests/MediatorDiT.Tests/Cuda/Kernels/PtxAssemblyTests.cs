using System.Diagnostics;
using System.Text.RegularExpressions;
using ILGPU.Backends.PTX;
using ILGPU.Runtime.Cuda;
using MediatorDiT.Cuda.Kernels;
using Xunit.Abstractions;

namespace MediatorDiT.Tests.Cuda.Kernels;

/// <summary>
/// Every device kernel's PTX assembled for Hopper (sm_90) by NVIDIA's own assembler, without a GPU: what a card's
/// driver does when the library loads a kernel, so PTX the driver would refuse fails here, and the assembler's report
/// (registers, stack frame, spills) says what the fused attention kernels cost a multiprocessor before a card times
/// them. ptxas comes from Debian's nvidia-cuda-toolkit (scripts/install-ptxas.sh, run by scripts/setup.sh): release
/// 11.8, which reads PTX ISA 7.8 at most, so the kernels are compiled for ISA 7.8 here (ILGPU's PTX for these kernels
/// differs between ISAs only in its .version line; a card's driver gets the ISA its version supports).
/// </summary>
public class PtxAssemblyTests(ITestOutputHelper output)
{
    /// <summary>ptxas: $MDIT_PTXAS, else where scripts/install-ptxas.sh puts it, else on PATH; null if none.</summary>
    private static string? FindPtxas()
    {
        if (Environment.GetEnvironmentVariable("MDIT_PTXAS") is { Length: > 0 } set) return set;
        const string installed = "/usr/local/lib/mediatordit/cuda/bin/ptxas";
        if (File.Exists(installed)) return installed;
        foreach (string folder in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
            if (File.Exists(Path.Combine(folder, "ptxas"))) return Path.Combine(folder, "ptxas");
        return null;
    }

    private static string Ptxas() =>
        FindPtxas() ?? throw new Xunit.Sdk.XunitException("ptxas is missing; scripts/setup.sh installs it (scripts/install-ptxas.sh), or set MDIT_PTXAS.");

    /// <summary>What ptxas -v said of one kernel, or its error.</summary>
    private sealed record Assembly(int ExitCode, string Messages)
    {
        private int Field(string pattern) =>
            Regex.Match(Messages, pattern) is { Success: true } m ? int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)
                : throw new Xunit.Sdk.XunitException($"ptxas did not report /{pattern}/:\n{Messages}");
        public int Registers => Field(@"Used (\d+) registers");
        public int StackFrame => Field(@"(\d+) bytes stack frame");
        public int SpillStores => Field(@"(\d+) bytes spill stores");
        public int SpillLoads => Field(@"(\d+) bytes spill loads");
    }

    private static Assembly Assemble(string ptxas, string ptx)
    {
        string file = Path.Combine(Path.GetTempPath(), $"mdit-ptx-{Guid.NewGuid():N}.ptx");
        File.WriteAllText(file, ptx);
        try
        {
            var start = new ProcessStartInfo(ptxas) { RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (string argument in new[] { "-arch=sm_90", "-v", file, "-o", "/dev/null" }) start.ArgumentList.Add(argument);
            using var process = Process.Start(start)!;
            var errors = process.StandardError.ReadToEndAsync();
            string messages = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            return new Assembly(process.ExitCode, messages + errors.Result);
        }
        finally { File.Delete(file); }
    }

    /// <summary>The PTX the library hands the driver: the fused kernels' after <see cref="InlineOperandSlots"/>, the others' as compiled.</summary>
    private static string LoadedPtx(PTXCompiledKernel compiled) =>
        compiled.SourceMethod.DeclaringType == typeof(FlashMmaKernels) ? InlineOperandSlots.InRegisters(compiled).PTXAssembly : compiled.PTXAssembly;

    [Fact]
    public void EveryKernelAssemblesForHopper()
    {
        string ptxas = Ptxas();
        using var context = PtxCompilationTests.PtxContext();
        using var backend = PtxCompilationTests.Backend(context, CudaInstructionSet.ISA_78);
        var kernels = PtxCompilationTests.Kernels().ToArray();
        Assert.True(kernels.Length >= 60, $"only {kernels.Length} kernels were found");
        var failures = new List<string>();
        foreach (var kernel in kernels)
        {
            var result = Assemble(ptxas, LoadedPtx(PtxCompilationTests.Compile(backend, kernel)));
            if (result.ExitCode != 0) failures.Add($"{PtxCompilationTests.Name(kernel)}: ptxas exit {result.ExitCode}: {result.Messages.Trim()}");
            else if (result.SpillStores > 0) output.WriteLine($"{PtxCompilationTests.Name(kernel)}: {result.SpillStores} bytes spilled");
        }
        Assert.True(failures.Count == 0, $"{failures.Count} of {kernels.Length} kernels do not assemble for sm_90:\n" + string.Join("\n", failures));
    }

    [Theory]
    [InlineData(nameof(FlashMmaKernels.Forward))]
    [InlineData(nameof(FlashMmaKernels.BackwardKeys))]
    [InlineData(nameof(FlashMmaKernels.BackwardQueries))]
    public void FusedAttentionKernels_AsLoaded_NeedNoStackFrame_AndSpillNothing(string name)
    {
        // Each lane holds its fragments for the widest head in registers (FlashMmaKernels.MaxHeadDim): at most 255 a
        // thread, nothing spilled, and no stack frame, which with ILGPU's operand slots in local memory is 2.5 to 3.5 KB.
        string ptxas = Ptxas();
        using var context = PtxCompilationTests.PtxContext();
        using var backend = PtxCompilationTests.Backend(context, CudaInstructionSet.ISA_78);
        var compiled = PtxCompilationTests.Compile(backend, typeof(FlashMmaKernels).GetMethod(name)!);
        var loaded = Assemble(ptxas, LoadedPtx(compiled));
        var ilgpus = Assemble(ptxas, compiled.PTXAssembly);
        output.WriteLine($"{name} as loaded: {loaded.Registers} registers, stack frame {loaded.StackFrame} bytes, spills {loaded.SpillStores}/{loaded.SpillLoads} bytes");
        output.WriteLine($"{name} as ILGPU compiles it: {ilgpus.Registers} registers, stack frame {ilgpus.StackFrame} bytes, spills {ilgpus.SpillStores}/{ilgpus.SpillLoads} bytes");

        Assert.Equal(0, loaded.ExitCode);
        Assert.Equal(0, loaded.StackFrame);
        Assert.Equal(0, loaded.SpillStores);
        Assert.Equal(0, loaded.SpillLoads);
        Assert.InRange(loaded.Registers, 1, 255);
    }
}
