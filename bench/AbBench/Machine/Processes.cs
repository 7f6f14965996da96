using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace AbBench;

/// <summary>A failure that ends the scenario; the message is meant for the user.</summary>
internal class BenchException(string message, int exitCode = 1) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}

/// <summary>What a finished child process printed.</summary>
internal sealed record ProcessOutput(int ExitCode, string StdOut, string StdErr)
{
    /// <summary>The last lines of both streams, for error messages.</summary>
    public string Tail(int lines = 20) => Processes.TailOf(StdOut + StdErr, lines);
}

/// <summary>
/// Starts child processes and keeps track of every one still running, so that an exception, Ctrl+C or the
/// harness's own exit never leaves a server or a load generator behind.
/// </summary>
internal static class Processes
{
    private static readonly ConcurrentDictionary<int, Process> Running = new();

    /// <summary>Starts a tracked process. Its standard input is closed at once: no child reads the terminal.</summary>
    public static Process Start(ProcessStartInfo startInfo)
    {
        startInfo.UseShellExecute = false;
        startInfo.RedirectStandardInput = true;
        Process process;
        try
        {
            process = Process.Start(startInfo) ?? throw new BenchException($"could not start {startInfo.FileName}");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new BenchException($"could not start {startInfo.FileName}: {e.Message}");
        }
        Running[process.Id] = process;
        process.StandardInput.Close();
        return process;
    }

    /// <summary>
    /// Waits for a process started with <see cref="Start"/> to exit, at most <paramref name="limit"/>; past it the
    /// process is killed and a <see cref="BenchException"/> with <paramref name="timeoutMessage"/> is thrown. The
    /// process is forgotten either way.
    /// </summary>
    public static async Task WaitForExitAsync(Process process, TimeSpan limit, string timeoutMessage, int exitCode, CancellationToken ct)
    {
        try
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
            deadline.CancelAfter(limit);
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            KillQuietly(process);
            ct.ThrowIfCancellationRequested();
            throw new BenchException(timeoutMessage, exitCode);
        }
        finally
        {
            Forget(process);
        }
    }

    /// <summary>Stops tracking a process that has exited or is about to be disposed.</summary>
    public static void Forget(Process process)
    {
        try
        {
            Running.TryRemove(process.Id, out _);
        }
        catch (InvalidOperationException)
        {
            // Never started: nothing to forget.
        }
    }

    /// <summary>Kills every tracked process and its children. Safe to call from any thread, more than once.</summary>
    public static void KillAll()
    {
        foreach (var (pid, process) in Running)
        {
            try
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                }
            }
            catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception or ObjectDisposedException or NotSupportedException)
            {
                // Already gone.
            }
            Running.TryRemove(pid, out _);
        }
    }

    /// <summary>
    /// Runs a program to its end, capturing its output (each line also goes to <paramref name="onLine"/>, if
    /// given). Past <paramref name="timeout"/> it is killed and a <see cref="BenchException"/> thrown.
    /// </summary>
    public static async Task<ProcessOutput> RunAsync(string fileName, IEnumerable<string> args, TimeSpan timeout,
        CancellationToken cancellation, string? workingDirectory = null, Action<string>? onLine = null)
    {
        var startInfo = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workingDirectory ?? "",
        };
        foreach (var arg in args)
        {
            startInfo.ArgumentList.Add(arg);
        }

        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        Exception? callbackFailure = null;
        using var process = Start(startInfo);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                return;
            }
            lock (stdout)
            {
                stdout.AppendLine(e.Data);
            }
            try
            {
                onLine?.Invoke(e.Data);
            }
            catch (Exception failure)
            {
                // Thrown on the reader thread it would end the harness; it is rethrown once the process is done.
                Interlocked.CompareExchange(ref callbackFailure, failure, null);
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (stderr)
                {
                    stderr.AppendLine(e.Data);
                }
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        deadline.CancelAfter(timeout);
        try
        {
            // Also waits until both output streams are read to their end.
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            KillQuietly(process);
            cancellation.ThrowIfCancellationRequested();
            throw new BenchException($"{fileName} {CommandLine.Join(args)} did not finish within {timeout.TotalSeconds:0} s; killed it.");
        }
        finally
        {
            Forget(process);
        }

        if (callbackFailure is not null)
        {
            throw callbackFailure is BenchException ? callbackFailure : new BenchException(callbackFailure.Message);
        }
        lock (stdout)
        {
            lock (stderr)
            {
                return new ProcessOutput(process.ExitCode, stdout.ToString(), stderr.ToString());
            }
        }
    }

    /// <summary>Runs a short command and returns its trimmed standard output, or null if it failed.</summary>
    public static async Task<string?> TryReadAsync(string fileName, IEnumerable<string> args, CancellationToken cancellation,
        string? workingDirectory = null)
    {
        try
        {
            var output = await RunAsync(fileName, args, TimeSpan.FromSeconds(30), cancellation, workingDirectory);
            return output.ExitCode == 0 ? output.StdOut.Trim() : null;
        }
        catch (BenchException)
        {
            return null;
        }
    }

    /// <summary>
    /// Stops a server: SIGTERM, so that it can shut down as it would in production, then a kill if it has not
    /// exited within <paramref name="grace"/>. Does not forget or dispose the process.
    /// </summary>
    public static async Task TerminateAsync(Process process, TimeSpan grace)
    {
        if (process.HasExited)
        {
            return;
        }
        var term = await TryReadAsync("kill", ["-TERM", process.Id.ToString(CultureInfo.InvariantCulture)], CancellationToken.None);
        using var deadline = new CancellationTokenSource(term is null ? TimeSpan.Zero : grace);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            KillQuietly(process);
            using var killDeadline = new CancellationTokenSource(grace);
            try
            {
                await process.WaitForExitAsync(killDeadline.Token);
            }
            catch (OperationCanceledException)
            {
                Console.Error.WriteLine($"warning: pid {process.Id} did not exit after SIGKILL within {grace.TotalSeconds:0} s.");
            }
        }
    }

    public static void KillQuietly(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception or NotSupportedException)
        {
            // Already gone.
        }
    }

    /// <summary>The full path of an executable on PATH, or null.</summary>
    public static string? FindOnPath(string name)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate) && (File.GetUnixFileMode(candidate) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0)
            {
                return candidate;
            }
        }
        return null;
    }

    public static string TailOf(string text, int lines)
    {
        var all = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        return string.Join('\n', all.Skip(Math.Max(0, all.Length - lines)).Select(l => "    " + l.TrimEnd('\r')));
    }
}
