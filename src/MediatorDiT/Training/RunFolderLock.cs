using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace MediatorDiT.Training;

/// <summary>
/// An exclusive lock on a run folder for the whole of a training run, so two runs never interleave
/// checkpoints and metrics in one folder. RUN_DIR/run.lock holds the holder's process id; the lock itself is
/// an OS byte-range lock (fcntl on Linux, LockFileEx on Windows) that the OS drops when the process ends, so
/// a killed run leaves no stale lock. The file is never deleted: deleting it on release would let a waiting
/// process lock the unlinked file while a third one locks a new one.
/// </summary>
internal sealed partial class RunFolderLock : IDisposable
{
    public const string FileName = "run.lock";

    // Past the process id, so readers of the id never touch the locked byte (Windows locks are mandatory).
    private const long LockOffset = 4096;

    // POSIX locks belong to the process: a second lock from this process would succeed and closing any
    // other handle to the file would drop ours, so this process's locks are also tracked here.
    private static readonly HashSet<string> HeldHere = new(StringComparer.Ordinal);

    private readonly FileStream _stream;
    private readonly string _lockPath;
    private bool _released;

    public string RunDir { get; }

    private RunFolderLock(string runDir, string lockPath, FileStream stream)
    {
        RunDir = runDir;
        _lockPath = lockPath;
        _stream = stream;
    }

    /// <summary>Locks <paramref name="runDir"/> (created if needed) or throws naming the process that holds it.</summary>
    public static RunFolderLock Acquire(string runDir)
    {
        string lockPath = Path.GetFullPath(Path.Combine(runDir, FileName));
        lock (HeldHere)
        {
            if (HeldHere.Contains(lockPath))
                throw InUse(runDir, $"{Environment.ProcessId}, this process");
            // macOS has no FileStream.Lock: there an exclusive open (flock) is the lock, and the holder's id
            // cannot be read while it is held.
            bool mac = OperatingSystem.IsMacOS();
            FileStream stream;
            try
            {
                Directory.CreateDirectory(runDir);
                stream = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, mac ? FileShare.None : FileShare.ReadWrite | FileShare.Delete);
            }
            catch (IOException) when (mac && File.Exists(lockPath))
            {
                throw InUse(runDir, "id unreadable while it holds the lock");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new MediatorDiTException($"the run folder '{runDir}' cannot be locked: {lockPath} cannot be opened ({e.Message.TrimEnd('.')}).");
            }
            if (!mac)
            {
                try
                {
                    stream.Lock(LockOffset, 1);
                }
                catch (IOException)
                {
                    string holder = ReadHolder(stream);
                    stream.Dispose();
                    throw InUse(runDir, holder);
                }
            }
            try
            {
                stream.SetLength(0);
                stream.Write(Encoding.ASCII.GetBytes(Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n"));
                stream.Flush(flushToDisk: true);
            }
            catch (IOException e)
            {
                stream.Dispose();
                throw new MediatorDiTException($"the run folder '{runDir}' cannot be locked: {lockPath} cannot be written ({e.Message.TrimEnd('.')}).");
            }
            HeldHere.Add(lockPath);
            return new RunFolderLock(runDir, lockPath, stream);
        }
    }

    private static MediatorDiTException InUse(string runDir, string holder) =>
        new($"the run folder '{runDir}' is in use by another training run (process {holder}, recorded in {FileName}); wait for it to end or stop it first.");

    private static string ReadHolder(FileStream stream)
    {
        try
        {
            stream.Position = 0;
            var buffer = new byte[32];
            int n = stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
            string text = Encoding.ASCII.GetString(buffer, 0, n).Trim();
            return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int pid) ? pid.ToString(CultureInfo.InvariantCulture) : "id not recorded yet";
        }
        catch (IOException)
        {
            return "id unreadable";
        }
    }

    /// <summary>Releases the lock (the file stays; see the class comment).</summary>
    public void Dispose()
    {
        lock (HeldHere)
        {
            if (_released) return;
            _released = true;
            _stream.Dispose();
            HeldHere.Remove(_lockPath);
        }
    }

    [GeneratedRegex(@"\.tmp-[0-9a-f]{12}$")]
    private static partial Regex TempFilePattern();

    [GeneratedRegex(@"^\.write-test-\d+$")]
    private static partial Regex ProbePattern();

    /// <summary>
    /// Deletes what interrupted writes left in the run folder: temp files of atomic writes
    /// (NAME.tmp-XXXXXXXXXXXX, see AtomicFile and PendingFile) in the folder, checkpoints/ and samples/, and
    /// writability probes (.write-test-PID, see OutputFolder). Only safe while holding the lock: no other
    /// training run can be writing them then. Returns the files removed.
    /// </summary>
    public IReadOnlyList<string> RemoveStaleTempFiles()
    {
        var removed = new List<string>();
        foreach (string dir in new[] { RunDir, Path.Combine(RunDir, "checkpoints"), Path.Combine(RunDir, "samples") })
        {
            if (!Directory.Exists(dir)) continue;
            foreach (string file in Directory.EnumerateFiles(dir))
            {
                string name = Path.GetFileName(file);
                bool stale = TempFilePattern().IsMatch(name) || (dir == RunDir && ProbePattern().IsMatch(name));
                if (!stale) continue;
                try
                {
                    File.Delete(file);
                    removed.Add(file);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // Left for the next start; it matches no checkpoint name, so nothing reads it.
                }
            }
        }
        return removed;
    }
}
