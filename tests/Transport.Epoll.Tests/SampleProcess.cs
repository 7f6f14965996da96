using System.Diagnostics;
using System.Text.RegularExpressions;

namespace EpollTransport.Tests;

/// <summary>
/// The sample (samples/WebApp, copied next to the tests) in a child process on the epoll transport, for what must not
/// happen to the test host: a lowered RLIMIT_NOFILE (run under <c>prlimit</c>), or a SIGTERM. Its log lines are the
/// events the tests await.
/// </summary>
internal sealed partial class SampleProcess : IDisposable
{
    private readonly Process _process;
    private readonly TaskCompletionSource<int> _port = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<int> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<string> _lines = [];
    private readonly List<(string Text, TaskCompletionSource Seen)> _awaited = [];

    /// <param name="prlimit">Arguments for <c>prlimit</c> (e.g. <c>--nofile=400:400</c>); null runs dotnet directly.</param>
    /// <param name="sampleArguments">More arguments for the sample, after its defaults (e.g. configuration keys).</param>
    public SampleProcess(string? prlimit = null, params string[] sampleArguments)
    {
        var start = new ProcessStartInfo(prlimit is null ? "dotnet" : "prlimit")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        // prlimit execs the command it is given: the child's pid is the server's either way.
        var arguments = prlimit is null ? new List<string>() : [prlimit, "dotnet"];
        arguments.AddRange([Path.Combine(AppContext.BaseDirectory, "WebApp.dll"), "--urls", "http://127.0.0.1:0", "--transport", "epoll", .. sampleArguments]);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        _process = new Process { StartInfo = start, EnableRaisingEvents = true };
        _process.OutputDataReceived += (_, e) => OnLine(e.Data);
        _process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        _process.Exited += (_, _) =>
        {
            _port.TrySetException(new InvalidOperationException("The server exited before listening."));
            _exited.TrySetResult(_process.ExitCode);
        };
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public Task<int> ListeningPort => _port.Task;

    /// <summary>Completes with the exit code when the process has exited.</summary>
    public Task<int> Exited => _exited.Task;

    public bool HasExited => _process.HasExited;

    /// <summary>Completes once the server has logged a line containing <paramref name="text"/> (before or after this call).</summary>
    public Task Logged(string text)
    {
        lock (_lines)
        {
            if (_lines.Any(line => line.Contains(text, StringComparison.Ordinal)))
            {
                return Task.CompletedTask;
            }
            var seen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _awaited.Add((text, seen));
            return seen.Task;
        }
    }

    /// <summary>Sends a signal by name (<c>TERM</c>, <c>INT</c>) with kill(1): .NET's Process.Kill only sends SIGKILL.</summary>
    public async Task SignalAsync(string signal)
    {
        using var kill = Process.Start("kill", ["-s", signal, _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        await kill.WaitForExitAsync();
        if (kill.ExitCode != 0)
        {
            throw new InvalidOperationException($"kill -s {signal} exited with {kill.ExitCode}.");
        }
    }

    /// <summary>Everything the server printed so far, for a failure message.</summary>
    public string Output()
    {
        lock (_lines)
        {
            return string.Join('\n', _lines);
        }
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }
        _process.Dispose();
    }

    private void OnLine(string? line)
    {
        if (line is null)
        {
            return;
        }
        if (ListeningOn().Match(line) is { Success: true } match)
        {
            _port.TrySetResult(int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
        }
        lock (_lines)
        {
            _lines.Add(line);
            foreach (var (text, seen) in _awaited.Where(a => line.Contains(a.Text, StringComparison.Ordinal)).ToArray())
            {
                seen.TrySetResult();
                _awaited.Remove((text, seen));
            }
        }
    }

    [GeneratedRegex(@"Now listening on: http://127\.0\.0\.1:(\d+)")]
    private static partial Regex ListeningOn();
}
