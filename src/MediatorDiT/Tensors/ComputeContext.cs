namespace MediatorDiT.Tensors;

/// <summary>Where a model's work runs (<see cref="DeviceSelection"/> parses "cpu", "cuda", "cuda:N").</summary>
public enum ComputeDevice
{
    /// <summary>This machine's cores: the managed kernels and, where it wins, the system OpenBLAS.</summary>
    Cpu,
    /// <summary>
    /// An NVIDIA GPU through the CUDA driver and cuBLAS, the one numbered <see cref="ComputeContext.DeviceIndex"/>.
    /// Its libraries are looked up at run time (<see cref="Devices.CudaLibraries"/>); see docs/GPU.md for what runs there.
    /// </summary>
    Cuda,
}

/// <summary>
/// The compute settings a model, pipeline or trainer carries: thread count, matrix-product backend, kernel
/// width and device. Kernels read the context of the call in progress (<see cref="Current"/>), which the
/// object that owns the work enters for the duration of each call (<see cref="Use()"/>), so two models with
/// different settings work side by side in one process, on different threads or one after the other.
/// Without an entered context kernels use <see cref="Default"/> (all cores, settings from the environment).
/// </summary>
public sealed record ComputeContext
{
    [ThreadStatic] private static ComputeContext? t_current;

    private readonly int _threads = Environment.ProcessorCount;

    /// <summary>Threads parallel kernels may use (GEMM tiles, batch x heads loops); at least 1.</summary>
    public int Threads
    {
        get => _threads;
        init => _threads = value >= 1 ? value
            : throw new MediatorDiTException($"a compute context needs at least 1 thread, got {value}.");
    }

    /// <summary>Which implementation runs the matrix products; MDIT_GEMM=managed|openblas|reference|auto sets the default.</summary>
    public GemmBackend Gemm { get; init; } = BackendFromEnvironment();

    /// <summary>
    /// Run the managed GEMM's 256-bit kernel even where 512-bit vectors are accelerated (its results are
    /// the same bits; for measurements). MDIT_DISABLE_AVX512=1 sets the default.
    /// </summary>
    public bool Vector256Only { get; init; } = Environment.GetEnvironmentVariable("MDIT_DISABLE_AVX512") == "1";

    /// <summary>The device the work runs on.</summary>
    public ComputeDevice Device { get; init; } = ComputeDevice.Cpu;

    private readonly int _deviceIndex;

    /// <summary>Which device of its kind (cuda:N); 0 for the CPU and the first GPU.</summary>
    public int DeviceIndex
    {
        get => _deviceIndex;
        init => _deviceIndex = value >= 0 ? value
            : throw new MediatorDiTException($"a device number is 0 or more, got {value}.");
    }

    /// <summary>The device and its number, as the --device option writes them ("cpu", "cuda:0").</summary>
    public DeviceSelection DeviceSelection => new(Device, Device == ComputeDevice.Cpu ? 0 : DeviceIndex);

    /// <summary>All cores, GEMM backend and kernel width from the environment, on the CPU.</summary>
    public static ComputeContext Default { get; } = new();

    /// <summary>The context of the call in progress on this thread, else <see cref="Default"/>.</summary>
    public static ComputeContext Current => t_current ?? Default;

    /// <summary>The default settings with <paramref name="threads"/> threads (null: all cores).</summary>
    public static ComputeContext WithThreads(int? threads) => threads is int t ? Default with { Threads = t } : Default;

    /// <summary>
    /// Makes this the <see cref="Current"/> context of this thread until the returned scope is disposed
    /// (scopes nest). Parallel regions started inside hand it to their helper threads.
    /// </summary>
    public Scope Use()
    {
        var previous = t_current;
        t_current = this;
        return new Scope(previous);
    }

    /// <summary>Enters <paramref name="context"/> when given; null keeps the caller's context.</summary>
    internal static Scope Use(ComputeContext? context) => context is null ? new Scope(t_current) : context.Use();

    /// <summary>Restores the context that was current before <see cref="Use()"/>.</summary>
    public readonly struct Scope : IDisposable
    {
        private readonly ComputeContext? _previous;

        internal Scope(ComputeContext? previous) => _previous = previous;

        /// <summary>Makes the previous context current again on this thread.</summary>
        public void Dispose() => t_current = _previous;
    }

    /// <summary>For helper threads of a parallel region: run with the region owner's context.</summary>
    internal static ComputeContext? Raw
    {
        get => t_current;
        set => t_current = value;
    }

    /// <summary>The environment variable that sets the default <see cref="Gemm"/>.</summary>
    public const string GemmVariable = "MDIT_GEMM";

    /// <summary>
    /// The backend a value of <see cref="GemmVariable"/> names (managed, openblas, reference, auto, any letter case;
    /// unset or empty: auto), or null for any other value, which the default context ignores (applications
    /// check it with this and refuse it: the CLI does).
    /// </summary>
    public static GemmBackend? GemmBackendNamed(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        null or "" or "auto" => GemmBackend.Auto,
        "managed" => GemmBackend.Managed,
        "openblas" => GemmBackend.OpenBlas,
        "reference" => GemmBackend.Reference,
        _ => null,
    };

    private static GemmBackend BackendFromEnvironment() =>
        GemmBackendNamed(Environment.GetEnvironmentVariable(GemmVariable)) ?? GemmBackend.Auto;
}
