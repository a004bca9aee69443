using System.IO.Compression;
using MediatorDiT.IO.Pickle;

namespace MediatorDiT.IO;

/// <summary>
/// Unpickles a checkpoint's data.pkl with PyTorch's persistent ids and tensor constructors
/// resolved from data: <c>('storage', torch.FloatStorage, key, location, numel)</c> becomes a
/// <see cref="TorchStorage"/> (read from the zip only when a tensor's bytes are first wanted), and
/// <c>torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)</c> becomes a
/// <see cref="StoredTensor"/> view of it. Parameters and tensor subclasses unwrap to their tensor.
/// </summary>
internal sealed class TorchUnpickler
{
    private static readonly Dictionary<string, DType> StorageTypes = new(StringComparer.Ordinal)
    {
        ["DoubleStorage"] = DType.F64,
        ["FloatStorage"] = DType.F32,
        ["HalfStorage"] = DType.F16,
        ["BFloat16Storage"] = DType.BF16,
        ["LongStorage"] = DType.I64,
        ["IntStorage"] = DType.I32,
        ["ShortStorage"] = DType.I16,
        ["CharStorage"] = DType.I8,
        ["ByteStorage"] = DType.U8,
        ["BoolStorage"] = DType.Bool,
        // Untyped storages are raw bytes; the tensor's dtype comes from _rebuild_tensor_v3.
        ["UntypedStorage"] = DType.U8,
    };

    private static readonly Dictionary<string, DType> TorchDTypes = new(StringComparer.Ordinal)
    {
        ["float64"] = DType.F64, ["double"] = DType.F64,
        ["float32"] = DType.F32, ["float"] = DType.F32,
        ["float16"] = DType.F16, ["half"] = DType.F16,
        ["bfloat16"] = DType.BF16,
        ["int64"] = DType.I64, ["long"] = DType.I64,
        ["int32"] = DType.I32, ["int"] = DType.I32,
        ["int16"] = DType.I16, ["short"] = DType.I16,
        ["int8"] = DType.I8,
        ["uint8"] = DType.U8,
        ["uint16"] = DType.U16,
        ["uint32"] = DType.U32,
        ["uint64"] = DType.U64,
        ["bool"] = DType.Bool,
    };

    private readonly TorchArchive _archive;
    private readonly string _path;
    private readonly Dictionary<string, TorchStorage> _storages = new(StringComparer.Ordinal);

    /// <summary>Every tensor the pickle created, so a caller can read them all while the zip is open.</summary>
    public List<StoredTensor> Tensors { get; } = [];

    public IReadOnlyCollection<TorchStorage> Storages => _storages.Values;

    /// <summary>
    /// When set, tensors keep no bytes: each read re-reads its storage from the zip (which must stay open)
    /// and drops it afterwards, so a state dict can be loaded into a model one tensor at a time.
    /// </summary>
    public bool Streamed { get; init; }

    public TorchUnpickler(TorchArchive archive)
    {
        _archive = archive;
        _path = archive.Path;
    }

    public object? Unpickle()
    {
        byte[] pickle = _archive.ReadEntry("data.pkl");
        var reader = new PickleReader(pickle, $"{_path} (entry {_archive.Prefix}/data.pkl)")
        {
            PersistentLoad = LoadStorage,
            CallHandler = TryRebuild,
        };
        return reader.Load();
    }

    private object? LoadStorage(object? pid)
    {
        if (pid is not object?[] { Length: 5 } id || id[0] is not "storage")
            throw Bad($"has a persistent id {PickleReader.Describe(pid)} where ('storage', type, key, location, numel) was expected");
        if (id[1] is not PickleGlobal storageType || !storageType.Module.StartsWith("torch", StringComparison.Ordinal))
            throw Bad($"names storage type {PickleReader.Describe(id[1])}, which is not a torch storage class");
        if (!StorageTypes.TryGetValue(storageType.Name, out DType dtype))
            throw Bad($"uses storage type {storageType.FullName}, which is not supported (supported: {string.Join(", ", StorageTypes.Keys)})");
        if (id[2] is not string key)
            throw Bad($"has a storage key {PickleReader.Describe(id[2])} where a string was expected");
        if (id[4] is not long numel || numel < 0)
            throw Bad($"gives storage '{key}' a size of {PickleReader.Describe(id[4])} where a non-negative integer was expected");

        if (_storages.TryGetValue(key, out TorchStorage? known))
        {
            if (known.DType != dtype || known.ElementCount != numel)
                throw Bad($"refers to storage '{key}' both as {known.DType.SafeTensorsName()} x {known.ElementCount} and as {dtype.SafeTensorsName()} x {numel}");
            return known;
        }

        string entryName = "data/" + key;
        ZipArchiveEntry entry = _archive.FindEntry(entryName)
            ?? throw Bad($"refers to storage '{entryName}', which is missing from the zip archive (the file is incomplete or damaged)");
        long needed = checked(numel * dtype.ElementSize());
        if (entry.Length < needed)
            throw Bad($"storage '{entryName}' has {entry.Length} bytes but its {numel} {dtype.SafeTensorsName()} elements need {needed}");

        var storage = new TorchStorage(key, dtype, numel, () => _archive.ReadEntry(entryName).AsMemory(0, (int)needed));
        _storages.Add(key, storage);
        return storage;
    }

    private bool TryRebuild(PickleGlobal callable, object?[] args, out object? result)
    {
        result = null;
        switch (callable.Module, callable.Name)
        {
            case ("torch._utils", "_rebuild_tensor"):
            case ("torch._utils", "_rebuild_tensor_v2"):
                // (storage, storage_offset, size, stride[, requires_grad, backward_hooks[, metadata]])
                RequireArgs(callable, args, 4);
                result = View(args[0], args[1], args[2], args[3], dtypeOverride: null);
                return true;
            case ("torch._utils", "_rebuild_tensor_v3"):
                // (storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype[, metadata])
                RequireArgs(callable, args, 7);
                result = View(args[0], args[1], args[2], args[3], TensorDType(args[6]));
                return true;
            case ("torch._utils", "_rebuild_parameter"):
            case ("torch._utils", "_rebuild_parameter_with_state"):
                // (data, requires_grad, backward_hooks[, state]): a Parameter is its data tensor here.
                RequireArgs(callable, args, 1);
                result = args[0];
                return true;
            case ("torch._tensor" or "torch._utils", "_rebuild_from_type_v2"):
                // (func, new_type, args, state): a tensor subclass; rebuild the plain tensor func makes.
                RequireArgs(callable, args, 3);
                if (args[0] is PickleGlobal inner && args[2] is object?[] innerArgs)
                    return TryRebuild(inner, innerArgs, out result);
                return false;
            case ("torch", "Size"):
                RequireArgs(callable, args, 1);
                result = args[0];
                return true;
            default:
                return false;
        }
    }

    private StoredTensor View(object? storageArg, object? offsetArg, object? sizeArg, object? strideArg, DType? dtypeOverride)
    {
        if (storageArg is not TorchStorage storage)
            throw Bad($"rebuilds a tensor from {PickleReader.Describe(storageArg)} where a storage was expected");
        if (offsetArg is not long offset || offset < 0)
            throw Bad($"gives a tensor of storage '{storage.Key}' the offset {PickleReader.Describe(offsetArg)}");
        int[] size = ToIntTuple(sizeArg, "size", storage);
        long[] stride = ToLongTuple(strideArg, "stride", storage);
        if (stride.Length != size.Length)
            throw Bad($"gives a tensor of storage '{storage.Key}' {size.Length} sizes but {stride.Length} strides");

        DType dtype = dtypeOverride ?? storage.DType;
        int elementSize = dtype.ElementSize();
        long storageElements = storage.ElementCount * storage.DType.ElementSize() / elementSize;
        long count = StoredTensor.CountElements(size);
        if (count > 0)
        {
            long last = offset;
            for (int i = 0; i < size.Length; i++) last += (size[i] - 1) * stride[i];
            if (last >= storageElements)
                throw Bad($"has a tensor [{StoredTensor.FormatShape(size)}] at offset {offset} with strides ({string.Join(", ", stride)}) reaching element {last} of storage '{storage.Key}', which has {storageElements}");
        }
        if (count * elementSize > Array.MaxLength)
            throw Bad($"has a tensor [{StoredTensor.FormatShape(size)}] larger than one array can hold");

        var tensor = Streamed
            ? new StoredTensor(dtype, size, new RereadBytes(() => Gather(storage.Reread(), elementSize, offset, size, stride, count)))
            : new StoredTensor(dtype, size, () => Gather(storage.Bytes, elementSize, offset, size, stride, count));
        Tensors.Add(tensor);
        return tensor;
    }

    /// <summary>
    /// The tensor's bytes in row-major order: a slice of the storage when the strides are the
    /// contiguous ones (the usual case), else copied element by element along the strides.
    /// </summary>
    private static ReadOnlyMemory<byte> Gather(ReadOnlyMemory<byte> storage, int elementSize, long offset, int[] size, long[] stride, long count)
    {
        if (count == 0) return ReadOnlyMemory<byte>.Empty;
        if (IsContiguous(size, stride))
            return storage.Slice((int)(offset * elementSize), (int)(count * elementSize));

        var bytes = new byte[count * elementSize];
        ReadOnlySpan<byte> source = storage.Span;
        var index = new int[size.Length];
        long position = offset;
        for (long n = 0; n < count; n++)
        {
            source.Slice((int)(position * elementSize), elementSize).CopyTo(bytes.AsSpan((int)(n * elementSize)));
            // Odometer step over the axes, last axis fastest.
            for (int axis = size.Length - 1; axis >= 0; axis--)
            {
                position += stride[axis];
                if (++index[axis] < size[axis]) break;
                position -= stride[axis] * size[axis];
                index[axis] = 0;
            }
        }
        return bytes;
    }

    /// <summary>Row-major contiguous, ignoring the stride of axes of size 1 (PyTorch's own rule).</summary>
    private static bool IsContiguous(int[] size, long[] stride)
    {
        long expected = 1;
        for (int axis = size.Length - 1; axis >= 0; axis--)
        {
            if (size[axis] != 1 && stride[axis] != expected) return false;
            expected *= size[axis];
        }
        return true;
    }

    private DType TensorDType(object? dtypeArg)
    {
        if (dtypeArg is PickleGlobal { Module: "torch" } g && TorchDTypes.TryGetValue(g.Name, out DType dtype)) return dtype;
        throw Bad($"rebuilds a tensor with dtype {PickleReader.Describe(dtypeArg)}, which is not supported");
    }

    private int[] ToIntTuple(object? value, string what, TorchStorage storage)
    {
        long[] values = ToLongTuple(value, what, storage);
        var result = new int[values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            if (values[i] > int.MaxValue)
                throw Bad($"gives a tensor of storage '{storage.Key}' a {what} of {values[i]}, larger than this library supports");
            result[i] = (int)values[i];
        }
        return result;
    }

    private long[] ToLongTuple(object? value, string what, TorchStorage storage)
    {
        if (value is not object?[] tuple)
            throw Bad($"gives a tensor of storage '{storage.Key}' the {what} {PickleReader.Describe(value)} where a tuple of integers was expected");
        var result = new long[tuple.Length];
        for (int i = 0; i < tuple.Length; i++)
        {
            if (tuple[i] is not long v || v < 0)
                throw Bad($"gives a tensor of storage '{storage.Key}' a {what} containing {PickleReader.Describe(tuple[i])} where non-negative integers were expected");
            result[i] = v;
        }
        return result;
    }

    private void RequireArgs(PickleGlobal callable, object?[] args, int minimum)
    {
        if (args.Length < minimum)
            throw Bad($"calls {callable.FullName} with {args.Length} arguments, fewer than the {minimum} it takes");
    }

    private MediatorDiTException Bad(string problem) => new($"{_path}: the checkpoint {problem}.");
}
