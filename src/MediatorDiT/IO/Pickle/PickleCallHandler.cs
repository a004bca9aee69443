namespace MediatorDiT.IO.Pickle;

/// <summary>
/// Builds the value of a REDUCE/NEWOBJ call to <paramref name="callable"/> with
/// <paramref name="args"/> from data alone (no code runs); returns false to leave the call to the
/// reader, which turns calls it does not know into inert <see cref="PickledObject"/>s.
/// </summary>
internal delegate bool PickleCallHandler(PickleGlobal callable, object?[] args, out object? result);
