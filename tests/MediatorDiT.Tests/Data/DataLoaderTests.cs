using MediatorDiT.Data;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Data;

public class DataLoaderTests
{
    private static DataLoader Loader(int count = 50, int batch = 8, ulong seed = 7, bool flip = false, bool dropLast = true, bool shuffle = true) =>
        new(new IndexDataset(count), new DataLoaderOptions { BatchSize = batch, Seed = seed, HorizontalFlip = flip, DropLast = dropLast, Shuffle = shuffle });

    [Fact]
    public void SameSeedGivesTheSameBatches()
    {
        var a = Loader().Batches().Take(20).ToList();
        var b = Loader().Batches().Take(20).ToList();

        for (int i = 0; i < 20; i++)
        {
            Assert.Equal(a[i].SampleIndices, b[i].SampleIndices);
            Assert.Equal(a[i].Images.Span.ToArray(), b[i].Images.Span.ToArray());
            Assert.Equal(a[i].Labels, b[i].Labels);
        }
    }

    [Fact]
    public void DifferentSeedsShuffleDifferently()
    {
        Assert.NotEqual(Loader(seed: 1).Order(0), Loader(seed: 2).Order(0));
    }

    [Fact]
    public void EachEpochIsADifferentPermutation()
    {
        var loader = Loader(count: 200);
        int[] e0 = loader.Order(0), e1 = loader.Order(1), e2 = loader.Order(2);

        Assert.Equal(Enumerable.Range(0, 200), e0.Order());
        Assert.Equal(Enumerable.Range(0, 200), e1.Order());
        Assert.NotEqual(e0, e1);
        Assert.NotEqual(e1, e2);
        Assert.NotEqual(Enumerable.Range(0, 200), e0);
        Assert.Equal(e1, loader.Order(1)); // recomputed after other epochs, unchanged
    }

    [Fact]
    public void GetBatchAtAStepEqualsIteratingToIt()
    {
        var iterated = Loader(flip: true).Batches().Take(23).ToList();
        var fresh = Loader(flip: true);

        foreach (long step in new long[] { 22, 0, 13, 6, 7 })
        {
            DataBatch direct = fresh.GetBatch(step);
            Assert.Equal(iterated[(int)step].SampleIndices, direct.SampleIndices);
            Assert.Equal(iterated[(int)step].Flipped, direct.Flipped);
            Assert.Equal(iterated[(int)step].Images.Span.ToArray(), direct.Images.Span.ToArray());
            Assert.Equal(step, direct.Step);
        }
        var resumed = Loader(flip: true).Batches(firstStep: 17).Take(6).ToList();
        Assert.Equal(iterated.Skip(17).Select(b => b.SampleIndices), resumed.Select(b => b.SampleIndices));
    }

    [Fact]
    public void StepsMapToEpochsAndDropLastSkipsTheRemainder()
    {
        var loader = Loader(count: 50, batch: 8);

        Assert.Equal(6, loader.BatchesPerEpoch);
        Assert.Equal(0, loader.EpochOf(5));
        Assert.Equal(1, loader.EpochOf(6));
        Assert.Equal(12, loader.FirstStepOf(2));
        var epoch1 = loader.EpochBatches(1).ToList();
        Assert.All(epoch1, b => Assert.Equal(8, b.Size));
        Assert.Equal(loader.Order(1).Take(48), epoch1.SelectMany(b => b.SampleIndices));
        Assert.Equal(1, epoch1[0].Epoch);
        Assert.Equal(6, epoch1[0].Step);
    }

    [Fact]
    public void KeepingTheLastBatchGivesASmallerOne()
    {
        var loader = Loader(count: 50, batch: 8, dropLast: false);

        Assert.Equal(7, loader.BatchesPerEpoch);
        DataBatch last = loader.GetBatch(6);
        Assert.Equal(2, last.Size);
        Assert.Equal([2, 2, 2, 3], last.Images.Shape);
        Assert.Equal(loader.Order(0).Skip(48), last.SampleIndices);
        Assert.Equal(8, loader.GetBatch(7).Size); // first batch of epoch 1
    }

    [Fact]
    public void BatchHoldsTheSamplesLabelsAndFlips()
    {
        var loader = Loader(count: 64, batch: 16, flip: true);
        var shape = new SampleShape(2, 2, 3);
        int flips = 0;

        foreach (DataBatch batch in loader.EpochBatches(0))
        {
            Assert.Equal([16, 2, 2, 3], batch.Images.Shape);
            for (int i = 0; i < batch.Size; i++)
            {
                int index = batch.SampleIndices[i];
                Assert.Equal(index % 3, batch.Labels[i]);
                Assert.Equal(IndexDataset.Expected(index, shape, batch.Flipped[i]), batch.Images.Span.Slice(i * 12, 12).ToArray());
                if (batch.Flipped[i]) flips++;
            }
        }
        Assert.InRange(flips, 16, 48); // about half of 64
    }

    [Fact]
    public void FlippingDoesNotChangeTheOrder()
    {
        Assert.Equal(Loader(flip: false).Order(3), Loader(flip: true).Order(3));
        Assert.All(Loader(flip: false).GetBatch(0).Flipped, Assert.False);
    }

    [Fact]
    public void WithoutShuffleTheOrderIsTheDatasetOrder()
    {
        var loader = Loader(count: 20, batch: 5, shuffle: false);

        Assert.Equal(Enumerable.Range(0, 20), loader.Order(4));
        Assert.Equal([5, 6, 7, 8, 9], loader.GetBatch(5).SampleIndices);
    }

    [Fact]
    public void ReusedBuffersGetTheSameValues()
    {
        var loader = Loader(flip: true);
        var images = new Tensor(1);
        var labels = new int[8];

        DataBatch reused = loader.GetBatch(9, images, labels);
        DataBatch fresh = loader.GetBatch(9);

        Assert.Same(images, reused.Images);
        Assert.Equal(fresh.Images.Span.ToArray(), images.Span.ToArray());
        Assert.Equal(fresh.Labels, labels);
    }

    [Fact]
    public void BadSettingsAreErrors()
    {
        Assert.Contains("fewer than one batch of 64", Assert.Throws<MediatorDiTException>(() => Loader(count: 10, batch: 64)).Message);
        Assert.Contains("at least 1", Assert.Throws<MediatorDiTException>(() => Loader(batch: 0)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => Loader().GetBatch(-1));
    }

    [Fact]
    public void LabelsOutsideTheClassCountAreCaught()
    {
        var loader = new DataLoader(new WrongLabels(new IndexDataset(10)), new DataLoaderOptions { BatchSize = 2 });

        var error = Assert.Throws<MediatorDiTException>(() => loader.GetBatch(0));

        Assert.Contains("outside the dataset's 2 classes", error.Message);
    }

    private sealed class WrongLabels(IDataset inner) : IDataset
    {
        public int Count => inner.Count;
        public int NumClasses => 2;
        public SampleShape SampleShape => inner.SampleShape;
        public void Get(int index, Span<float> sample, out int label)
        {
            inner.Get(index, sample, out _);
            label = 2;
        }
    }
}
