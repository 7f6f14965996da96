using System.Diagnostics;

namespace AbBench;

/// <summary>The last lines a process printed, for a failure message.</summary>
internal sealed class OutputTail
{
    private readonly Queue<string> _lines = new();

    /// <summary>Reads the process's stdout and stderr from now on; <paramref name="onLine"/> also sees each line.</summary>
    public void Attach(Process process, Action<string>? onLine = null)
    {
        process.OutputDataReceived += (_, e) => Keep(e.Data, onLine);
        process.ErrorDataReceived += (_, e) => Keep(e.Data, onLine);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public bool Contains(string text)
    {
        lock (_lines)
        {
            return _lines.Any(l => l.Contains(text, StringComparison.Ordinal));
        }
    }

    public override string ToString()
    {
        lock (_lines)
        {
            return _lines.Count == 0 ? "    (no output)" : string.Join('\n', _lines.Select(l => "    " + l));
        }
    }

    private void Keep(string? line, Action<string>? onLine)
    {
        if (line is null)
        {
            return;
        }
        onLine?.Invoke(line);
        lock (_lines)
        {
            _lines.Enqueue(line);
            while (_lines.Count > 40)
            {
                _lines.Dequeue();
            }
        }
    }
}
