using System.Runtime.InteropServices;
using MediatorDiT.Devices;

namespace MediatorDiT.Cuda.Distributed;

/// <summary>
/// Ordering between two CUDA streams of one context without blocking the host: an event recorded on one stream that
/// the other waits for (cuEventRecord, cuStreamWaitEvent), from the driver <see cref="CudaLibraries"/> found. ILGPU
/// records events but has no cross-stream wait, so the four driver calls are bound here. Each <see cref="Order"/>
/// re-records the same event: a wait takes the event as it stands when the wait is queued.
/// </summary>
internal sealed unsafe class CudaStreamOrder : IDisposable
{
    /// <summary>CU_EVENT_DISABLE_TIMING: the cheapest event, for ordering only.</summary>
    private const uint DisableTiming = 2;

    private readonly delegate* unmanaged<IntPtr*, uint, int> _create;
    private readonly delegate* unmanaged<IntPtr, IntPtr, int> _record;
    private readonly delegate* unmanaged<IntPtr, IntPtr, uint, int> _wait;
    private readonly delegate* unmanaged<IntPtr, int> _destroy;
    private IntPtr _event;

    /// <summary>An event in the current CUDA context (bind the accelerator first), from the driver at <paramref name="driverPath"/>.</summary>
    public CudaStreamOrder(string driverPath)
    {
        if (!NativeLibrary.TryLoad(driverPath, out var library))
            throw new MediatorDiTException($"the NVIDIA driver at {driverPath} could not be loaded.");
        IntPtr Get(string name) => NativeLibrary.TryGetExport(library, name, out var address) ? address
            : throw new MediatorDiTException($"the NVIDIA driver at {driverPath} has no {name}.");
        _create = (delegate* unmanaged<IntPtr*, uint, int>)Get("cuEventCreate");
        _record = (delegate* unmanaged<IntPtr, IntPtr, int>)Get("cuEventRecord");
        _wait = (delegate* unmanaged<IntPtr, IntPtr, uint, int>)Get("cuStreamWaitEvent");
        _destroy = (delegate* unmanaged<IntPtr, int>)Get("cuEventDestroy_v2");
        IntPtr e;
        Check(_create(&e, DisableTiming), "cuEventCreate");
        _event = e;
    }

    /// <summary>Work queued on <paramref name="later"/> after this call waits for the work queued on <paramref name="earlier"/> before it.</summary>
    public void Order(IntPtr earlier, IntPtr later)
    {
        if (_event == IntPtr.Zero) throw new ObjectDisposedException(nameof(CudaStreamOrder));
        Check(_record(_event, earlier), $"cuEventRecord (event 0x{_event:x}, stream 0x{earlier:x})");
        Check(_wait(later, _event, 0), $"cuStreamWaitEvent (stream 0x{later:x}, event 0x{_event:x})");
    }

    private static void Check(int result, string call)
    {
        if (result != 0) throw new MediatorDiTException($"CUDA {call} failed (CUresult {result}).");
    }

    public void Dispose()
    {
        if (_event == IntPtr.Zero) return;
        _destroy(_event);
        _event = IntPtr.Zero;
    }
}
