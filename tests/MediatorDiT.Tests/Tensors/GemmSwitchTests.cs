using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Tensors;

/// <summary>Runs alone: its tests flip process-wide GEMM switches that change other tests' rounding.</summary>
[CollectionDefinition(nameof(ProcessWideGemmSwitches), DisableParallelization = true)]
public sealed class ProcessWideGemmSwitches;

/// <summary>
/// The process-wide switches (<see cref="Gemm.Backend"/>, <see cref="ManagedGemm.ForceVector256"/>) take
/// effect. They are flipped for the whole process, so these tests run in a collection of their own, never
/// beside tests that compare results bit for bit (those saw the other backend's rounding mid-run).
/// </summary>
[Collection(nameof(ProcessWideGemmSwitches))]
public class GemmSwitchTests
{
    [Fact]
    public void ForceVector256_Switch_IsHonoured()
    {
        var d = GemmTests.Data.Make(new GemmTests.Case(false, false, 17, 40, 9, 1f, 0f, Pad: 0, Seed: 7));
        bool old = ManagedGemm.ForceVector256;
        try
        {
            ManagedGemm.ForceVector256 = true;
            Assert.False(ManagedGemm.Uses512);
            GemmTests.AssertClose(d, d.Run(GemmTests.Via(GemmBackend.Managed, 1)), "forced 256");
        }
        finally { ManagedGemm.ForceVector256 = old; }
    }

    [Fact]
    public void Backend_Property_SelectsImplementation()
    {
        var d = GemmTests.Data.Make(new GemmTests.Case(false, false, 20, 30, 40, 1f, 0f, Pad: 0, Seed: 2));
        var old = Gemm.Backend;
        try
        {
            // Reference is left out here: other test classes may run products while the global is set.
            foreach (var backend in new[] { GemmBackend.Managed, GemmBackend.OpenBlas, GemmBackend.Auto })
            {
                Gemm.Backend = backend;
                Assert.Equal(backend, Gemm.Backend);
                GemmTests.AssertClose(d, d.Run((cs, a, b, c) => Gemm.Sgemm(cs.TransA, cs.TransB, cs.M, cs.N, cs.K, cs.Alpha, a, cs.Lda, b,
                    cs.Ldb, cs.Beta, c, cs.Ldc)), backend.ToString());
            }
        }
        finally { Gemm.Backend = old; }
    }
}
