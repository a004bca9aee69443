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
/// them; nvdisasm, beside it, lists their machine code. ptxas comes from Debian's nvidia-cuda-toolkit (scripts/install-ptxas.sh, run by scripts/setup.sh): release
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

    /// <summary>ptxas -arch=sm_90 -v on the PTX; the machine code goes to <paramref name="cubin"/> (or nowhere).</summary>
    private static Assembly Assemble(string ptxas, string ptx, string? cubin = null)
    {
        string file = Path.Combine(Path.GetTempPath(), $"mdit-ptx-{Guid.NewGuid():N}.ptx");
        File.WriteAllText(file, ptx);
        try
        {
            var (exitCode, messages) = Run(ptxas, "-arch=sm_90", "-v", file, "-o", cubin ?? "/dev/null");
            return new Assembly(exitCode, messages);
        }
        finally { File.Delete(file); }
    }

    private static (int ExitCode, string Output) Run(string program, params string[] arguments)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string argument in arguments) start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        var errors = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output + errors.Result);
    }

    /// <summary>
    /// The kernel's machine instructions (nvdisasm of the cubin) as (address, mnemonic without modifiers or predicate,
    /// whole text), in order; a branch's label is replaced by its target's address.
    /// </summary>
    private static List<(long Address, string Mnemonic, string Text)> MachineCode(string cubin)
    {
        string nvdisasm = Path.Combine(Path.GetDirectoryName(Ptxas())!, "nvdisasm") is var beside && File.Exists(beside) ? beside : "nvdisasm";
        var (exitCode, sass) = Run(nvdisasm, cubin);
        Assert.True(exitCode == 0, $"nvdisasm failed ({exitCode}): {sass}");
        var code = new List<(long, string, string)>();
        var labels = new Dictionary<string, long>();
        var pending = new List<string>();
        foreach (Match m in Regex.Matches(sass, @"^(\.L_x_\d+):|/\*([0-9a-f]{4,})\*/\s+(?:@!?U?P\w+\s+)?([A-Z0-9_]+)[^;]*;", RegexOptions.Multiline))
        {
            if (m.Groups[1].Success) { pending.Add(m.Groups[1].Value); continue; }
            long address = Convert.ToInt64(m.Groups[2].Value, 16);
            foreach (string label in pending) labels[label] = address;
            pending.Clear();
            code.Add((address, m.Groups[3].Value, m.Value));
        }
        return code.Select(i => Regex.Match(i.Item3, @"`\((\.L_x_\d+)\)") is { Success: true } l && labels.TryGetValue(l.Groups[1].Value, out long to)
            ? (i.Item1, i.Item2, i.Item3.Replace(l.Value, $"0x{to:x}", StringComparison.Ordinal)) : i).ToList();
    }

    /// <summary>
    /// The instructions of the innermost loop that holds every tensor-core instruction (the walk over the other side's
    /// blocks): from a backward branch's target to the branch, the shortest such span; its staging loops counted once.
    /// </summary>
    private static List<(long Address, string Mnemonic, string Text)> MainLoop(List<(long Address, string Mnemonic, string Text)> code)
    {
        long first = code.First(i => i.Mnemonic == "HMMA").Address, last = code.Last(i => i.Mnemonic == "HMMA").Address;
        List<(long, string, string)>? best = null;
        foreach (var (address, mnemonic, text) in code)
        {
            if (mnemonic != "BRA" || Regex.Match(text, @"0x([0-9a-f]+)") is not { Success: true } target) continue;
            long to = Convert.ToInt64(target.Groups[1].Value, 16);
            if (to >= address || to > first || address < last) continue;
            var span = code.Where(i => i.Address >= to && i.Address <= address).ToList();
            if (best is null || span.Count < best.Count) best = span;
        }
        Assert.NotNull(best);
        return best!;
    }

    /// <summary>The PTX the library hands the driver: the fused kernels' after <see cref="InlineOperandSlots"/>, the others' as compiled.</summary>
    private static string LoadedPtx(PTXCompiledKernel compiled) =>
        InlineOperandSlots.Rewrites(compiled.SourceMethod) ? InlineOperandSlots.InRegisters(compiled).PTXAssembly : compiled.PTXAssembly;

    /// <summary>
    /// The thread-per-row full-attention kernels, kept as the references the fused and tiled paths are tested against:
    /// a thread's row of scores or gradients is a local array. Every other kernel must need no local memory at all.
    /// </summary>
    private static readonly HashSet<string> ReferencesWithLocalRows =
        ["AttentionKernels.FlashAttention", "AttentionBackwardKernels.FullAttentionQueryGradient", "AttentionBackwardKernels.FullAttentionKeyValueGradient"];

    [Fact]
    public void EveryKernelAssemblesForHopper_WithoutSpills_AndLocalMemoryOnlyInTheReferences()
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
            else if (result.SpillStores > 0 || result.StackFrame > 0 && !ReferencesWithLocalRows.Contains(PtxCompilationTests.Name(kernel)))
                failures.Add($"{PtxCompilationTests.Name(kernel)}: stack frame {result.StackFrame} bytes, {result.SpillStores} bytes spilled, {result.Registers} registers");
        }
        Assert.True(failures.Count == 0, $"{failures.Count} of {kernels.Length} kernels do not assemble for sm_90, or spill, or keep local memory:\n" + string.Join("\n", failures));
    }

    /// <summary>Each fused kernel with each head type (<see cref="FlashHeads.All"/>).</summary>
    public static TheoryData<string, string> FusedKernels()
    {
        var data = new TheoryData<string, string>();
        foreach (string name in new[] { nameof(FlashMmaKernels.Forward), nameof(FlashMmaKernels.BackwardKeys), nameof(FlashMmaKernels.BackwardQueries) })
            foreach (var head in FlashHeads.All) data.Add(name, head.Name);
        return data;
    }

    [Theory]
    [MemberData(nameof(FusedKernels))]
    public void FusedAttentionKernels_AsLoaded_NeedNoStackFrame_AndSpillNothing(string name, string head)
    {
        // Each lane holds its fragments for the widest head in registers (FlashMmaKernels.MaxHeadDim): at most 255 a
        // thread, nothing spilled, and no stack frame (with ILGPU's operand slots in local memory, 2.6 to 3.7 KB).
        string ptxas = Ptxas();
        using var context = PtxCompilationTests.PtxContext();
        using var backend = PtxCompilationTests.Backend(context, CudaInstructionSet.ISA_78);
        var compiled = PtxCompilationTests.Compile(backend, FlashMmaKernels.Instance(name, FlashHeads.All.Single(h => h.Name == head)));
        string cubin = Path.Combine(Path.GetTempPath(), $"mdit-{name}-{head}-{Guid.NewGuid():N}.cubin");
        string ptx = LoadedPtx(compiled);
        var loaded = Assemble(ptxas, ptx, cubin);
        var ilgpus = Assemble(ptxas, compiled.PTXAssembly);
        List<(long Address, string Mnemonic, string Text)> code;
        try { code = loaded.ExitCode == 0 ? MachineCode(cubin) : []; }
        finally { File.Delete(cubin); }
        output.WriteLine($"{name}<{head}> as loaded: {loaded.Registers} registers, stack frame {loaded.StackFrame} bytes, spills {loaded.SpillStores}/{loaded.SpillLoads} bytes");
        output.WriteLine($"{name}<{head}> as ILGPU compiles it: {ilgpus.Registers} registers, stack frame {ilgpus.StackFrame} bytes, spills {ilgpus.SpillStores}/{ilgpus.SpillLoads} bytes");

        Assert.Equal(0, loaded.ExitCode);
        // Every mma.sync became one HMMA.16816.F32.BF16; the main loop's instruction mix says what else a warp issues
        // per block (an issue-bound estimate until a card times it: docs/GPU.md).
        Assert.Equal(ptx.Split("mma.sync.aligned.m16n8k16").Length - 1, code.Count(i => i.Text.Contains("HMMA.16816.F32.BF16", StringComparison.Ordinal)));
        var loop = MainLoop(code);
        output.WriteLine($"{name}<{head}>: {code.Count} machine instructions; main loop {loop.Count}, of them " +
            string.Join(", ", loop.GroupBy(i => i.Mnemonic).OrderByDescending(m => m.Count()).Take(10).Select(m => $"{m.Key} {m.Count()}")));
        Assert.Equal(0, loaded.StackFrame);
        Assert.Equal(0, loaded.SpillStores);
        Assert.Equal(0, loaded.SpillLoads);
        Assert.InRange(loaded.Registers, 1, 255);
    }
}
