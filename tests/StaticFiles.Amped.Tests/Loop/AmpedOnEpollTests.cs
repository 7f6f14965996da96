using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using StaticFiles.Amped;

namespace StaticFiles.Amped.Tests.Loop;

/// <summary>
/// The middleware on real Kestrel and the epoll transport: after a helper's disk call the request resumes on its
/// loop, the reactor when the app runs inline; else its completion comes through the middleware's own loop and the
/// request goes on on the thread pool.
/// </summary>
public sealed class AmpedOnEpollTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("amped-loop-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static Task<KestrelHost> StartAsync(bool inline, AmpedStaticFileOptions options)
        => KestrelHost.StartAsync(inline ? KestrelHost.EpollInline : KestrelHost.Epoll, app => app.UseAmpedStaticFiles(options), reactorCount: 1);

    [Theory]
    [InlineData(true, AmpedMode.Amped, "epoll-reactor-0")]
    [InlineData(true, AmpedMode.Sped, "epoll-reactor-0")]
    // On the thread pool the completion comes through the middleware's own loop, which hands the request back to
    // the thread pool: the app never runs on amped-loop (nor on a helper).
    [InlineData(false, AmpedMode.Amped, ".NET TP Worker")]
    public async Task AfterTheDiskCallTheRequestResumesOnItsLoop(bool inline, AmpedMode mode, string expectedThread)
    {
        File.WriteAllText(Path.Combine(_root, "hello.txt"), "hello");
        var threads = new List<string?>();
        await using var host = await StartAsync(inline, new AmpedStaticFileOptions
        {
            RootPath = _root,
            Mode = mode,
            OnPrepareResponse = _ =>
            {
                lock (threads)
                {
                    threads.Add(Thread.CurrentThread.Name);
                }
            },
        });
        using var client = new HttpClient { BaseAddress = host.BaseAddress };

        // The first request of a connection starts on the thread pool (Kestrel's choice); later ones run where the
        // transport completes their reads, unless the next request arrived before Kestrel went back to reading
        // (then it goes on where it is): ask until one ran where expected.
        for (int i = 0; i < 100 && !threads.Skip(1).Contains(expectedThread); i++)
        {
            Assert.Equal("hello", await client.GetStringAsync("/hello.txt").WaitAsync(WaitLimit));
        }
        Assert.Contains(expectedThread, threads.Skip(1));
        Assert.All(threads, name => Assert.Matches("^(epoll-reactor-0|\\.NET TP Worker)$", name ?? ""));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task ParallelDownloadsOfALargeFileAreByteExact(bool inline)
    {
        var content = RandomNumberGenerator.GetBytes(3 * 1024 * 1024 + 17);
        File.WriteAllBytes(Path.Combine(_root, "big.bin"), content);
        await using var host = await StartAsync(inline, new AmpedStaticFileOptions { RootPath = _root, ServeUnknownFileTypes = true });
        using var client = new HttpClient { BaseAddress = host.BaseAddress };

        var downloads = Enumerable.Range(0, 16).Select(_ => client.GetByteArrayAsync("/big.bin"));
        foreach (var body in await Task.WhenAll(downloads).WaitAsync(WaitLimit))
        {
            Assert.Equal(content.Length, body.Length);
            Assert.True(content.AsSpan().SequenceEqual(body));
        }
    }
}
