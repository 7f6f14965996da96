using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;
using StaticFiles.Amped.Tests.Disk;

namespace StaticFiles.Amped.Tests.Loop;

/// <summary>
/// With default scheduling the middleware's own loop (<c>amped-loop</c>) runs disk completions only: a request that
/// a helper's completion resumes goes back to the thread pool before the app or Kestrel runs again, so one blocking
/// endpoint cannot stall every static file of the process.
/// </summary>
public sealed class ResumeOnThreadPoolTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("amped-resume-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public async Task TheNextMiddlewareNeverRunsOnTheMiddlewaresLoop()
    {
        File.WriteAllText(Path.Combine(_root, "file.txt"), "file");
        // Every open goes to a helper, and no miss is remembered: each request below resumes from a completion.
        using var disk = new ScriptedDisk { ColdDentries = true };
        using var files = new AmpedFileServer(new AmpedStaticFileOptions { MissCacheEntries = 0 }, _root, NullLogger.Instance, disk);
        string? servedOn = null;
        await using var host = await KestrelHost.StartAsync(KestrelHost.Epoll, app =>
        {
            app.Use(next => context => files.InvokeAsync(context, next));
            app.Run(context => context.Response.WriteAsync(Thread.CurrentThread.Name ?? "(unnamed)"));
        }, reactorCount: 1);
        using var client = new HttpClient { BaseAddress = host.BaseAddress };

        for (var i = 0; i < 20; i++)
        {
            servedOn = await client.GetStringAsync("/endpoint").WaitAsync(WaitLimit);
            Assert.NotEqual("amped-loop", servedOn);
        }
        Assert.Equal("file", await client.GetStringAsync("/file.txt").WaitAsync(WaitLimit));
    }

    [Fact]
    public async Task AHelperServedFileCompletesWhileAnEndpointBlocks()
    {
        File.WriteAllText(Path.Combine(_root, "file.txt"), "file");
        using var disk = new ScriptedDisk { ColdDentries = true };
        using var files = new AmpedFileServer(new AmpedStaticFileOptions { MissCacheEntries = 0 }, _root, NullLogger.Instance, disk);
        using var gate = new ManualResetEventSlim();
        var blocking = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var unblocked = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var host = await KestrelHost.StartAsync(KestrelHost.Epoll, app =>
        {
            app.Use(next => context => files.InvokeAsync(context, next));
            app.Run(context =>
            {
                // An endpoint that blocks its thread, as a synchronous database call would, until the test releases it.
                blocking.TrySetResult();
                unblocked.TrySetResult(gate.Wait(WaitLimit));
                return context.Response.WriteAsync("blocked");
            });
        }, reactorCount: 1);
        using var blockedClient = new HttpClient { BaseAddress = host.BaseAddress };
        using var fileClient = new HttpClient { BaseAddress = host.BaseAddress };

        var blocked = blockedClient.GetStringAsync("/block");
        await blocking.Task.WaitAsync(WaitLimit);
        string file;
        try
        {
            file = await fileClient.GetStringAsync("/file.txt").WaitAsync(WaitLimit);

            // The file came while the endpoint was still inside its wait, not after the wait gave up.
            Assert.False(unblocked.Task.IsCompleted);
        }
        finally
        {
            // Released whatever happened, so that a failed run leaves no thread blocked for the host's shutdown.
            gate.Set();
        }
        Assert.Equal("file", file);
        Assert.True(await unblocked.Task.WaitAsync(WaitLimit));
        Assert.Equal("blocked", await blocked.WaitAsync(WaitLimit));
    }
}
