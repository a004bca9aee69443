using System.Diagnostics;
using System.Runtime.Intrinsics;
using MediatorDiT.IO;

namespace MediatorDiT.Tests.Tensors;

/// <summary>
/// The 512-bit, 256-bit and 128-bit code paths give the same results: a checker process (MediatorDiT.SimdCheck)
/// runs the vectorised kernels and both attentions once as the machine allows and once with 512-bit
/// vectors turned off through the runtime's own settings (.NET 10 reads DOTNET_EnableAVX512; the older
/// DOTNET_EnableAVX512F is ignored), or with only Vector128 accelerated as on ARM64 (NEON): the 128-bit GEMM
/// micro-kernel and the scalar element loops, once with FMA (a preferred width of 128 bits) and once without
/// (AVX2 off, which takes FMA with it: fused multiply-adds then run in software, still exact). The outputs are compared. GEMM
/// must agree bit for bit (every micro-kernel adds the k terms in the same order); kernels with vector-width
/// reductions (softmax sums, attention) agree to float rounding.
/// </summary>
public class VectorWidthTests
{
    private static (string Path, string Stdout) RunChecker(string? variable, string? value)
    {
        string outPath = Path.Combine(Path.GetTempPath(), $"mdit-simd-{Guid.NewGuid():N}.safetensors");
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(System.IO.Path.Combine(AppContext.BaseDirectory, "MediatorDiT.SimdCheck.dll"));
        psi.ArgumentList.Add(outPath);
        // The managed kernels in both runs (Auto would pick OpenBLAS for most shapes without AVX-512).
        psi.Environment["MDIT_GEMM"] = "managed";
        psi.Environment.Remove("DOTNET_EnableAVX512");
        psi.Environment.Remove("DOTNET_PreferredVectorBitWidth");
        if (variable is not null) psi.Environment[variable] = value;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(120_000), "the checker did not finish in 120 s");
        Assert.True(p.ExitCode == 0, stderr.Result);
        return (outPath, stdout.Result);
    }

    [Theory]
    [InlineData("DOTNET_EnableAVX512", "0")]
    [InlineData("DOTNET_PreferredVectorBitWidth", "256")]
    [InlineData("DOTNET_PreferredVectorBitWidth", "128")]
    [InlineData("DOTNET_EnableAVX2", "0")]
    public void NarrowerVectorPathsMatchTheWidest(string variable, string value)
    {
        var wide = RunChecker(null, null);
        var narrow = RunChecker(variable, value);
        try
        {
            // The wide checker runs without this process's switches: it sees at least what this process sees (more where
            // test.sh runs this process narrowed, e.g. with DOTNET_EnableAVX512=0 on an AVX-512 machine).
            if (Vector512.IsHardwareAccelerated) Assert.Contains("Vector512 on", wide.Stdout);
            Assert.Contains("Vector512 off", narrow.Stdout);
            if (variable == "DOTNET_EnableAVX2" || value == "128") Assert.Contains("Vector256 off", narrow.Stdout);
            var a = SafeTensors.Read(wide.Path);
            var b = SafeTensors.Read(narrow.Path);
            Assert.Equal(a.Keys.OrderBy(n => n), b.Keys.OrderBy(n => n));
            Assert.Contains("mediator.grad.m.an_bias", a.Keys);
            foreach (string name in a.Keys)
            {
                var x = a.GetFloat(name).Span;
                var y = b.GetFloat(name).Span;
                if (name.StartsWith("gemm.", StringComparison.Ordinal))
                    Assert.True(x.SequenceEqual(y), $"{name}: the narrower GEMM differs from the widest one");
                else
                    TestData.AssertClose(x, y, 2e-5f, name);
            }
        }
        finally
        {
            File.Delete(wide.Path);
            File.Delete(narrow.Path);
        }
    }
}
