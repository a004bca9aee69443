namespace MediatorDiT.Data;

/// <summary>Which part of a built-in dataset to read; see <see cref="TestSplitRule"/> for where the line is drawn.</summary>
public enum DatasetSplit
{
    /// <summary>The training images: every image not in the test split.</summary>
    Train,

    /// <summary>The held-out images of <see cref="BuiltInDataset.TestSplit"/>.</summary>
    Test,

    /// <summary>Every image, by class and then package order (train and test interleaved per class).</summary>
    All,
}
