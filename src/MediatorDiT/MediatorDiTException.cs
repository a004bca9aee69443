namespace MediatorDiT;

/// <summary>
/// A problem with the user's input (a file, a key, an option value). The message is one complete
/// sentence naming what was wrong and what was expected; the CLI prints it and exits non-zero.
/// </summary>
public sealed class MediatorDiTException : Exception
{
    public MediatorDiTException(string message) : base(message) { }
    public MediatorDiTException(string message, Exception inner) : base(message, inner) { }
}
