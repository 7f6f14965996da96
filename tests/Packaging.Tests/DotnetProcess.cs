using System.Diagnostics;
using System.Text;

namespace Packaging.Tests;

/// <summary>Runs the dotnet CLI (or an app on the dotnet host) as a child process with a bounded run time.</summary>
internal static class DotnetProcess
{
    /// <summary>
    /// Set by the CLI that runs the tests (`dotnet test` sets it to the dotnet executable that runs it); the tests
    /// then use the same SDK. Without it, `dotnet` from PATH.
    /// </summary>
    public static string HostPath =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } path && File.Exists(path) ? path : "dotnet";

    // Set by the CLI for its own MSBuild; a child CLI sets its own.
    private static readonly string[] InheritedMsBuildVariables =
        ["MSBuildExtensionsPath", "MSBuildSDKsPath", "MSBUILD_EXE_PATH", "MSBuildLoadMicrosoftTargetsReadOnly"];

    public static ProcessStartInfo StartInfo(string workingDirectory, params string[] arguments)
    {
        var start = new ProcessStartInfo(HostPath)
        {
            WorkingDirectory = workingDirectory,
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        foreach (var name in InheritedMsBuildVariables)
        {
            start.Environment.Remove(name);
        }
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        start.Environment["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1";
        start.Environment["DOTNET_GENERATE_ASPNET_CERTIFICATE"] = "false";
        // No MSBuild node or compiler server outlives a command: none holds the output pipes open, none stays behind.
        start.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        start.Environment["DOTNET_CLI_USE_MSBUILD_SERVER"] = "0";
        start.Environment["UseSharedCompilation"] = "false";
        return start;
    }

    /// <summary>Runs a CLI command to its end; fails with its output when it exits non-zero or runs past the timeout.</summary>
    public static async Task<string> RunAsync(ProcessStartInfo start, TimeSpan timeout, ITestOutputHelper output)
    {
        using var process = new Started(start);
        var command = $"dotnet {string.Join(' ', start.ArgumentList)}";
        output.WriteLine($"$ {command}");
        var stopwatch = Stopwatch.StartNew();
        var exited = await process.WaitForExitAsync(timeout);
        output.WriteLine(process.Output);
        output.WriteLine($"({stopwatch.Elapsed.TotalSeconds:F1} s, {(exited ? $"exit code {process.Process.ExitCode}" : "killed")})");
        if (!exited)
        {
            Assert.Fail($"`{command}` ran past {timeout.TotalSeconds} s and was killed. Its output:\n{process.Output}");
        }
        Assert.True(process.Process.ExitCode == 0, $"`{command}` exited with code {process.Process.ExitCode}. Its output:\n{process.Output}");
        return process.Output;
    }

    /// <summary>A started child process whose stdout and stderr are collected; disposing it kills what still runs.</summary>
    public sealed class Started : IDisposable
    {
        private readonly StringBuilder _output = new();
        private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Started(ProcessStartInfo start, Action<string>? onLine = null)
        {
            Process = new Process { StartInfo = start, EnableRaisingEvents = true };
            DataReceivedEventHandler received = (_, e) =>
            {
                if (e.Data is null)
                {
                    return;
                }
                lock (_output)
                {
                    _output.AppendLine(e.Data);
                }
                onLine?.Invoke(e.Data);
            };
            Process.OutputDataReceived += received;
            Process.ErrorDataReceived += received;
            Process.Exited += (_, _) => _exited.TrySetResult();
            Process.Start();
            Process.StandardInput.Close();
            Process.BeginOutputReadLine();
            Process.BeginErrorReadLine();
        }

        public Process Process { get; }

        /// <summary>Completes when the process has exited.</summary>
        public Task Exited => _exited.Task;

        public string Output
        {
            get
            {
                lock (_output)
                {
                    return _output.ToString();
                }
            }
        }

        /// <summary>
        /// Waits for the exit and the end of its output; false when the timeout passed first, and then the process
        /// and its children are killed.
        /// </summary>
        public async Task<bool> WaitForExitAsync(TimeSpan timeout)
        {
            using var deadline = new CancellationTokenSource(timeout);
            try
            {
                await Process.WaitForExitAsync(deadline.Token);
                return true;
            }
            catch (OperationCanceledException)
            {
                Kill();
                return false;
            }
        }

        private void Kill()
        {
            try
            {
                Process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // Exited meanwhile.
            }
            // Bounded: a killed process is reaped at once, and nothing else holds its output pipes once its tree is gone.
            Process.WaitForExit(TimeSpan.FromSeconds(10));
        }

        public void Dispose()
        {
            if (!Process.HasExited)
            {
                Kill();
            }
            Process.Dispose();
        }
    }
}
