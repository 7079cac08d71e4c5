using System.Text;

namespace Inbox.Reliability.TestHost;

/// <summary>
/// The durable handler log: each line is written and flushed to the OS before the handler returns, so a
/// SIGKILL of this process loses nothing already written (fsync is not needed: the kernel keeps the data).
/// </summary>
public sealed class HandlerLog : IDisposable
{
    private readonly Lock _lock = new();
    private readonly FileStream _file;

    public HandlerLog(string path)
    {
        var folder = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(folder)) Directory.CreateDirectory(folder);
        // Unbuffered append, shared so the test can read while this process writes.
        _file = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete, bufferSize: 0);
    }

    /// <summary>Appends one line (a newline is added) and flushes it to the OS.</summary>
    public void Append(string line)
    {
        var bytes = Encoding.UTF8.GetBytes(line + "\n");
        lock (_lock)
        {
            _file.Write(bytes);
            _file.Flush();
        }
    }

    public void Dispose()
    {
        lock (_lock) _file.Dispose();
    }
}
