using Microsoft.Win32.SafeHandles;

namespace MediatorDiT.IO;

/// <summary>Opens files for reading, turning the usual IO failures into one-sentence user errors.</summary>
internal static class InputFile
{
    public static SafeFileHandle OpenHandle(string path) =>
        Guard(path, () => File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read));

    public static FileStream OpenStream(string path) =>
        Guard(path, () => new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16));

    /// <summary>Reads up to <paramref name="count"/> bytes from the start (fewer when the file is shorter).</summary>
    public static byte[] ReadPrefix(string path, int count)
    {
        using SafeFileHandle handle = OpenHandle(path);
        long length = Guard(path, () => RandomAccess.GetLength(handle));
        var prefix = new byte[(int)Math.Min(count, length)];
        ReadExactly(handle, prefix, 0, path);
        return prefix;
    }

    /// <summary>Fills <paramref name="buffer"/> from <paramref name="fileOffset"/>; a short read means the file shrank or is truncated.</summary>
    public static void ReadExactly(SafeFileHandle handle, Span<byte> buffer, long fileOffset, string path)
    {
        while (!buffer.IsEmpty)
        {
            int read;
            try { read = RandomAccess.Read(handle, buffer, fileOffset); }
            catch (IOException ex) { throw new MediatorDiTException($"{path}: cannot be read ({ex.Message.TrimEnd('.')}).", ex); }
            if (read == 0)
                throw new MediatorDiTException($"{path}: ends at byte {fileOffset} although {buffer.Length} more bytes were expected there (the file is truncated).");
            buffer = buffer[read..];
            fileOffset += read;
        }
    }

    public static T Guard<T>(string path, Func<T> open)
    {
        try
        {
            return open();
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new MediatorDiTException($"{path}: the file does not exist.", ex);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new MediatorDiTException($"{path}: cannot be read ({ex.Message.TrimEnd('.')}).", ex);
        }
    }
}
