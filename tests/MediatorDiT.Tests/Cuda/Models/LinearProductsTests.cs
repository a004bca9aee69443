using ILGPU;
using ILGPU.Runtime;
using MediatorDiT.Cuda.Blas;
using MediatorDiT.Cuda.Models;
using MediatorDiT.Tensors;
using MediatorDiT.Tests.Cuda.Kernels;

namespace MediatorDiT.Tests.Cuda.Models;

/// <summary>
/// The linear layers' three products at each precision on the CPU accelerator, against the float32 SGEMM: in fp32
/// they are that SGEMM; in bf16 they equal it over operands rounded to bf16 on the host, bit for bit, with the weight
/// read from its bf16 copy inside a flat master buffer (as a training state's), which follows the master only when
/// refreshed. Operands whose producers wrote their bf16 copies, and the backward that rounds dy once for both its
/// products, give the same bits as the products rounding each operand themselves.
/// </summary>
[Collection(CpuAcceleratorCollection.Name)]
public class LinearProductsTests(AcceleratorFixture device)
{
    private const int Rows = 4, In = 7, Out = 5, WeightOffset = 3, MasterLength = 50;

    private sealed class Setup : IDisposable
    {
        public readonly float[] Master = KernelData.Uniform(MasterLength, 81, -1f, 1f);
        public readonly float[] X = KernelData.Uniform(Rows * In, 82, -2f, 2f);
        public readonly float[] Dy = KernelData.Uniform(Rows * Out, 83, -2f, 2f);
        public readonly float[] Y0 = KernelData.Uniform(Rows * Out, 84, -1f, 1f);
        public readonly float[] DWeight0 = KernelData.Uniform(Out * In, 85, -1f, 1f);
        public readonly float[] Dx0 = KernelData.Uniform(Rows * In, 86, -1f, 1f);
        public readonly MemoryBuffer1D<float, Stride1D.Dense> DMaster, DX, DDy, DY, DDWeight, DDx;

        public Setup(AcceleratorFixture device)
        {
            (DMaster, DX, DDy, DY, DDWeight, DDx) = (device.Upload(Master), device.Upload(X), device.Upload(Dy), device.Upload(Y0), device.Upload(DWeight0),
                device.Upload(Dx0));
        }

        public ArrayView<float> Weight => DMaster.View.SubView(WeightOffset, Out * In);

        public float[] HostWeight => Master.AsSpan(WeightOffset, Out * In).ToArray();

        public void Dispose()
        {
            foreach (var b in new[] { DMaster, DX, DDy, DY, DDWeight, DDx }) b.Dispose();
        }
    }

    /// <summary>The float32 plain SGEMM of <paramref name="shape"/> over host operands.</summary>
    private float[] Sgemm(GemmShape shape, float[] a, float[] b, float[] c0)
    {
        using var da = device.Upload(a);
        using var db = device.Upload(b);
        using var dc = device.Upload(c0);
        new IlgpuGemm(device.Accelerator, plain: true).Sgemm(shape, da.View, db.View, dc.View);
        return device.Download(dc);
    }

    private static GemmShape ForwardShape => GemmShape.Single(false, true, Rows, Out, In, 1f, In, In, 1f, Out);
    private static GemmShape WeightGradientShape => GemmShape.Single(true, false, Out, In, Rows, 1f, Out, In, 1f, In);
    private static GemmShape InputGradientShape(bool accumulate) => GemmShape.Single(false, false, Rows, In, Out, 1f, Out, In, accumulate ? 1f : 0f, In);

    [Theory]
    [InlineData(DevicePrecision.Fp32)]
    [InlineData(DevicePrecision.Bf16)]
    public void TheThreeProducts_EqualTheFloatGemmOverTheOperandsAtThatPrecision(DevicePrecision precision)
    {
        using var s = new Setup(device);
        using var products = new LinearProducts(device.Kernels, new IlgpuGemm(device.Accelerator, plain: true), precision);
        products.KeepBf16Copies([s.DMaster.View]);
        products.Forward(s.DX.View, s.Weight, s.DY.View, Rows, In, Out);
        products.WeightGradient(s.DDy.View, s.DX.View, s.DDWeight.View, Rows, In, Out);
        products.InputGradient(s.DDy.View, s.Weight, s.DDx.View, Rows, In, Out, accumulate: true);

        Func<float[], float[]> at = precision == DevicePrecision.Bf16 ? ReferenceBf16.Rounded : v => v;
        var (x, dy, w) = (at(s.X), at(s.Dy), at(s.HostWeight));
        device.AssertSameBits(Sgemm(ForwardShape, x, w, s.Y0), device.Download(s.DY));
        device.AssertSameBits(Sgemm(WeightGradientShape, dy, x, s.DWeight0), device.Download(s.DDWeight));
        device.AssertSameBits(Sgemm(InputGradientShape(true), dy, w, s.Dx0), device.Download(s.DDx));
        if (precision == DevicePrecision.Bf16) // the rounding changed the result, so the bf16 path really ran
            Assert.NotEqual(Sgemm(ForwardShape, s.X, s.HostWeight, s.Y0), device.Download(s.DY));
    }

    [Fact]
    public void Bf16WeightCopies_FollowTheMasterOnlyWhenWrittenAgain()
    {
        using var s = new Setup(device);
        using var products = new LinearProducts(device.Kernels, new IlgpuGemm(device.Accelerator, plain: true), DevicePrecision.Bf16);
        products.KeepBf16Copies([s.DMaster.View]);
        var oldWeight = ReferenceBf16.Rounded(s.HostWeight);
        var newWeight = KernelData.Uniform(Out * In, 87, -1f, 1f);
        s.Weight.CopyFromCPU(newWeight); // an optimiser step on the master

        var zeros = new float[Rows * Out];
        s.DY.View.MemSetToZero();
        products.Forward(s.DX.View, s.Weight, s.DY.View, Rows, In, Out);
        device.AssertSameBits(Sgemm(ForwardShape, ReferenceBf16.Rounded(s.X), oldWeight, zeros), device.Download(s.DY));

        // The optimiser step writes the copy again (KernelSet.OptimizerUpdate); here the rounding kernel does.
        device.Kernels.RoundToBf16(s.DMaster.View, products.Bf16CopyOf(s.DMaster.View));
        s.DY.View.MemSetToZero();
        products.Forward(s.DX.View, s.Weight, s.DY.View, Rows, In, Out);
        device.AssertSameBits(Sgemm(ForwardShape, ReferenceBf16.Rounded(s.X), ReferenceBf16.Rounded(newWeight), zeros), device.Download(s.DY));
        Assert.Throws<InvalidOperationException>(() => products.Bf16CopyOf(s.DMaster.View.SubView(1, s.DMaster.View.Length - 1)));
        using var fp32 = new LinearProducts(device.Kernels, new IlgpuGemm(device.Accelerator, plain: true), DevicePrecision.Fp32);
        Assert.Equal(0, fp32.Bf16CopyOf(s.DMaster.View).Length);
    }

    [Fact]
    public void ABf16ProductOfAWeightWithoutACopyIsRefused()
    {
        using var s = new Setup(device);
        using var products = new LinearProducts(device.Kernels, new IlgpuGemm(device.Accelerator, plain: true), DevicePrecision.Bf16);
        products.KeepBf16Copies([s.DMaster.View.SubView(0, WeightOffset)]);
        Assert.Throws<InvalidOperationException>(() => products.Forward(s.DX.View, s.Weight, s.DY.View, Rows, In, Out));
    }

    [Theory]
    [InlineData(DevicePrecision.Fp32, false)]
    [InlineData(DevicePrecision.Bf16, false)]
    [InlineData(DevicePrecision.Bf16, true)]
    public void Backward_IsItsThreeProducts_WithOperandsRoundedOnceOrByTheirProducers(DevicePrecision precision, bool producersRound)
    {
        var db0 = KernelData.Uniform(Out, 90, -1f, 1f);
        float[][] Run(bool separately)
        {
            using var s = new Setup(device);
            using var products = new LinearProducts(device.Kernels, new IlgpuGemm(device.Accelerator, plain: true), precision);
            products.KeepBf16Copies([s.DMaster.View]);
            using var db = device.Upload(db0);
            using var x16 = device.Accelerator.Allocate1D<ushort>(Rows * In);
            using var dy16 = device.Accelerator.Allocate1D<ushort>(Rows * Out);
            ProductOperand x = s.DX.View, dy = s.DDy.View;
            if (producersRound)
            {
                device.Kernels.RoundToBf16(s.DX.View, x16.View);
                device.Kernels.RoundToBf16(s.DDy.View, dy16.View);
                // The fp32 views are not read when the copies are there: garbage in them must not matter.
                (x, dy) = (new ProductOperand(s.DX.View, x16.View), new ProductOperand(s.DDy.View, dy16.View));
            }
            if (separately)
            {
                products.WeightGradient(s.DDy.View, s.DX.View, s.DDWeight.View, Rows, In, Out);
                products.BiasGradient(s.DDy.View, db.View, Rows, Out);
                products.InputGradient(s.DDy.View, s.Weight, s.DDx.View, Rows, In, Out, accumulate: true);
            }
            else
            {
                if (producersRound) s.DX.View.MemSetToZero();
                products.Backward(x, s.Weight, dy, s.DDWeight.View, db.View, s.DDx.View, Rows, In, Out, accumulateDx: true);
            }
            return [device.Download(s.DDWeight), device.Download(db), device.Download(s.DDx)];
        }
        var expected = Run(separately: true);
        var actual = Run(separately: false);
        string[] names = ["dW", "db", "dx"];
        for (int i = 0; i < names.Length; i++)
        {
            Assert.True(expected[i].SequenceEqual(actual[i]), $"{names[i]} differs from the separate products'");
            Assert.Contains(expected[i], v => v != 0);
        }
        Assert.NotEqual(db0, expected[1]);
    }

    [Fact]
    public void Forward_ReadsTheProducersBf16Copy_AsTheRoundedInput()
    {
        using var s = new Setup(device);
        using var products = new LinearProducts(device.Kernels, new IlgpuGemm(device.Accelerator, plain: true), DevicePrecision.Bf16);
        products.KeepBf16Copies([s.DMaster.View]);
        using var x16 = device.Accelerator.Allocate1D<ushort>(Rows * In);
        device.Kernels.RoundToBf16(s.DX.View, x16.View);
        s.DX.View.MemSetToZero(); // only the copy is read
        products.Forward(new ProductOperand(s.DX.View, x16.View), s.Weight, s.DY.View, Rows, In, Out);
        device.AssertSameBits(Sgemm(ForwardShape, ReferenceBf16.Rounded(s.X), ReferenceBf16.Rounded(s.HostWeight), s.Y0), device.Download(s.DY));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Bf16Outputs_AreTheFloatProductsRoundedOnce(bool operandsFromProducers)
    {
        // fc1's forward and fc2's input gradient stored in bf16: the bf16 product's float32 result rounded once, whether
        // the product writes bf16 itself (operands from their producers) or through scratch and a rounding pass; the
        // weight and bias gradients as Backward's.
        using var s = new Setup(device);
        using var products = new LinearProducts(device.Kernels, new IlgpuGemm(device.Accelerator, plain: true), DevicePrecision.Bf16, operandsFromProducers);
        products.KeepBf16Copies([s.DMaster.View]);
        var (x16, w16, dy16) = (ReferenceBf16.Rounded(s.X), ReferenceBf16.Rounded(s.HostWeight), ReferenceBf16.Rounded(s.Dy));
        using var y16 = device.Accelerator.Allocate1D<ushort>(Rows * Out);
        products.ForwardToBf16(s.DX.View, s.Weight, y16.View, Rows, In, Out);
        var forward = Sgemm(GemmShape.Single(false, true, Rows, Out, In, 1f, In, In, 0f, Out), x16, w16, new float[Rows * Out]);
        device.AssertSameHalves(forward.Select(ReferenceBf16.Round).ToArray(), y16.GetAsArray1D(), "y16");

        using var dx16 = device.Accelerator.Allocate1D<ushort>(Rows * In);
        using var db = device.Upload(new float[Out]);
        products.BackwardToBf16InputGradient(s.DX.View, s.Weight, s.DDy.View, s.DDWeight.View, db.View, dx16.View, Rows, In, Out);
        var dx = Sgemm(InputGradientShape(accumulate: false), dy16, w16, new float[Rows * In]);
        device.AssertSameHalves(dx.Select(ReferenceBf16.Round).ToArray(), dx16.GetAsArray1D(), "dx16");
        device.AssertSameBits(Sgemm(WeightGradientShape, dy16, x16, s.DWeight0), device.Download(s.DDWeight));
        Assert.Contains(device.Download(db), v => v != 0);
    }

    [Fact]
    public void Bf16Outputs_NeedBf16Products()
    {
        using var s = new Setup(device);
        using var products = new LinearProducts(device.Kernels, new IlgpuGemm(device.Accelerator, plain: true), DevicePrecision.Fp32);
        using var y16 = device.Accelerator.Allocate1D<ushort>(Rows * Out);
        Assert.Throws<InvalidOperationException>(() => products.ForwardToBf16(s.DX.View, s.Weight, y16.View, Rows, In, Out));
    }

    [Theory]
    [InlineData(DevicePrecision.Fp32)]
    [InlineData(DevicePrecision.Bf16)]
    public void BiasGradient_AddsTheColumnSumsInFloat32_AsTheReferenceKernel(DevicePrecision precision)
    {
        // 300 rows, then 7 (the ones vector grown once, then read in part); the reference sums in row order, the
        // product from zero then adds: the same terms in another order, 1e-5 of max(1, |expected|).
        using var products = new LinearProducts(device.Kernels, new IlgpuGemm(device.Accelerator, plain: true), precision);
        foreach (int rows in new[] { 300, 7 })
        {
            var dy = KernelData.Uniform(rows * Out, 88 + rows, -2f, 2f);
            var db0 = KernelData.Uniform(Out, 89, -1f, 1f);
            using var ddy = device.Upload(dy);
            using var expected = device.Upload(db0);
            using var actual = device.Upload(db0);
            device.Kernels.ColumnSums(ddy.View, expected.View, Out);
            products.BiasGradient(ddy.View, actual.View, rows, Out);
            float[] e = device.Download(expected), a = device.Download(actual);
            for (int j = 0; j < Out; j++)
                Assert.True(Math.Abs(e[j] - a[j]) <= 1e-5 * Math.Max(1, Math.Abs(e[j])), $"{rows} rows, column {j}: expected {e[j]:R}, got {a[j]:R}");
            Assert.NotEqual(db0, a); // added, and in fp32: bf16 operands would miss the reference by far more than 1e-5
        }
    }
}

/// <summary>The same tests on a CPU accelerator shaped as a CUDA device: 32-lane warps, a GPU's launch shapes.</summary>
[Collection(CudaShapedAcceleratorCollection.Name)]
public sealed class LinearProductsOnCudaWarpsTests(CudaShapedAcceleratorFixture device) : LinearProductsTests(device);
