using MediatorDiT.Evaluation.Performance;
using MediatorDiT.Models;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Tensors;

/// <summary>
/// Compute settings travel in <see cref="ComputeContext"/> objects: the one a call enters is the one its kernels
/// and their helper threads use, and two models carrying different contexts run side by side in one process.
/// </summary>
public class ComputeContextTests
{
    [Fact]
    public void EnteredContext_SelectsGemmBackendAndKernelWidth_AndIsRestored()
    {
        var d = GemmTests.Data.Make(new GemmTests.Case(false, false, 20, 30, 40, 1f, 0f, Pad: 0, Seed: 2));
        var outer = ComputeContext.Current;
        foreach (var backend in new[] { GemmBackend.Managed, GemmBackend.OpenBlas, GemmBackend.Auto, GemmBackend.Reference })
        {
            using (new ComputeContext { Gemm = backend, Threads = 2 }.Use())
            {
                Assert.Equal(backend, Gemm.Backend);
                Assert.Equal(2, ComputeContext.Current.Threads);
                GemmTests.AssertClose(d, d.Run((cs, a, b, c) => Gemm.Sgemm(cs.TransA, cs.TransB, cs.M, cs.N, cs.K, cs.Alpha, a, cs.Lda, b,
                    cs.Ldb, cs.Beta, c, cs.Ldc)), backend.ToString());
            }
            Assert.Same(outer, ComputeContext.Current);
        }
        using (new ComputeContext { Vector256Only = true }.Use())
        {
            Assert.False(ManagedGemm.Uses512);
            GemmTests.AssertClose(d, d.Run(GemmTests.Via(GemmBackend.Managed, 1)), "forced 256");
        }
    }

    [Fact]
    public void InvalidThreadCount_IsRefusedWithOneSentence()
    {
        var e = Assert.Throws<MediatorDiTException>(() => new ComputeContext { Threads = 0 });
        Assert.Equal("a compute context needs at least 1 thread, got 0.", e.Message);
    }

    [Fact]
    public void HelperThreadsOfAParallelRegion_SeeTheOwnersContext()
    {
        var context = new ComputeContext { Threads = 2, Gemm = GemmBackend.Reference };
        var seen = new ComputeContext[64];
        using (context.Use())
            ParallelLoop.For(seen.Length, i =>
            {
                Thread.SpinWait(2000); // long enough that the helper thread takes some items
                seen[i] = ComputeContext.Current;
            });
        Assert.All(seen, c => Assert.Same(context, c));
    }

    /// <summary>
    /// Two models, one on the reference GEMM on one thread and one on the default backend on two threads, run
    /// their forwards concurrently on two threads: each gives exactly what it gives alone under its own
    /// settings, and the reference model's output differs from the other backend's, so its setting took effect.
    /// </summary>
    [Fact]
    public void TwoModelsWithDifferentContexts_RunSideBySide()
    {
        var config = new ModelConfig
        {
            InputSize = 16, PatchSize = 2, InChannels = 4, HiddenSize = 64, Depth = 2, NumHeads = 2, NumClasses = 4,
            Attention = AttentionKind.Mediator, MediatorNum = 16,
        }.Validate();
        var reference = new ComputeContext { Threads = 1, Gemm = GemmBackend.Reference };
        var fast = new ComputeContext { Threads = 2, Gemm = GemmBackend.Managed };
        var a = new ModelWorkload(config, batch: 4, seed: 7).Model;
        var b = new ModelWorkload(config, batch: 4, seed: 7).Model;
        a.Compute = reference;
        b.Compute = fast;
        var x = new Tensor(4, config.InChannels, config.InputSize, config.InputSize);
        new RandomSource(8).FillGaussian(x.Span);
        float[] t = [0.1f, 0.4f, 0.7f, 0.9f];
        int[] y = [0, 1, 2, 3];
        float[] aloneA = a.Forward(x, t, y).Span.ToArray(), aloneB = b.Forward(x, t, y).Span.ToArray();
        Assert.NotEqual(aloneA, aloneB); // same weights: only the backends differ

        for (int round = 0; round < 3; round++)
        {
            float[]? sideA = null, sideB = null;
            var ta = new Thread(() => { for (int i = 0; i < 3; i++) sideA = a.Forward(x, t, y).Span.ToArray(); });
            var tb = new Thread(() => { for (int i = 0; i < 3; i++) sideB = b.Forward(x, t, y).Span.ToArray(); });
            ta.Start();
            tb.Start();
            ta.Join();
            tb.Join();
            Assert.Equal(aloneA, sideA);
            Assert.Equal(aloneB, sideB);
        }
        Assert.Same(ComputeContext.Default, ComputeContext.Current);
    }

    [Theory]
    [InlineData(null, GemmBackend.Auto)]
    [InlineData("", GemmBackend.Auto)]
    [InlineData(" Auto ", GemmBackend.Auto)]
    [InlineData("managed", GemmBackend.Managed)]
    [InlineData("OpenBLAS", GemmBackend.OpenBlas)]
    [InlineData("reference", GemmBackend.Reference)]
    [InlineData("blas", null)]
    [InlineData("openblass", null)]
    public void TheGemmVariableNamesABackendOrNothing(string? value, GemmBackend? expected) =>
        Assert.Equal(expected, ComputeContext.GemmBackendNamed(value));
}
