namespace MediatorDiT;

/// <summary>
/// A problem with the user's input (a file, a key, an option value). The message is one complete
/// sentence naming what was wrong and what was expected; the CLI prints it and exits non-zero.
/// </summary>
public class MediatorDiTException : Exception
{
    /// <summary>An error with its one-sentence <paramref name="message"/>.</summary>
    /// <param name="message">What was wrong and what was expected.</param>
    public MediatorDiTException(string message) : base(message) { }
    /// <summary>An error with its one-sentence <paramref name="message"/>, caused by <paramref name="inner"/>.</summary>
    /// <param name="message">What was wrong and what was expected.</param>
    /// <param name="inner">The exception that revealed the problem (e.g. an <see cref="IOException"/>).</param>
    public MediatorDiTException(string message, Exception inner) : base(message, inner) { }
}
