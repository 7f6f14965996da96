using System.Net;

namespace StaticFiles.Amped.Tests.Middleware;

/// <summary>Many requests at once, and clients that go away mid-body, leave every response byte-exact.</summary>
public sealed class RobustnessTests : SiteTests
{

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task AFifoUnderTheRootFallsThroughWithoutWaitingForAWriter(AmpedMode mode)
    {
        // A blocking open of a FIFO waits until someone opens it for writing: here, forever.
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", Site.PathOf("pipe.txt")))
        {
            await mkfifo.WaitForExitAsync().WaitAsync(WaitLimit);
            Assert.Equal(0, mkfifo.ExitCode);
        }
        var server = await Site.StartAsync(mode);

        using var response = await server.GetAsync("/pipe.txt").WaitAsync(WaitLimit);
        using var after = await server.GetAsync("/css/site.css").WaitAsync(WaitLimit);

        Assert.True(response.FellThrough());
        Assert.Equal(StaticSite.SiteCss, await after.BodyAsync());
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task ConcurrentRequestsAreEachServedByteExact(AmpedMode mode)
    {
        // Few helpers, so that requests queue behind each other.
        var server = await Site.StartAsync(mode, o => o.DataHelperThreads = 1);

        var requests = new List<Task>();
        for (var i = 0; i < 8; i++)
        {
            var first = i * 300_001L;
            var last = first + 70_000 + i;
            requests.Add(Range(first, last));
            requests.Add(Whole(i % 2 == 0 ? "/big.bin" : "/css/site.css", i % 2 == 0 ? StaticSite.Big : StaticSite.SiteCss));
        }
        requests.Add(Whole("/", StaticSite.IndexHtml));
        requests.Add(Whole("/docs/", StaticSite.DocsIndexHtml));
        await Task.WhenAll(requests).WaitAsync(WaitLimit);

        async Task Range(long first, long last)
        {
            using var response = await server.GetAsync("/big.bin", ("Range", $"bytes={first}-{last}"));
            Assert.Equal(HttpStatusCode.PartialContent, response.StatusCode);
            var body = await response.BodyAsync();
            Assert.True(StaticSite.Big.AsSpan((int)first, (int)(last - first + 1)).SequenceEqual(body), $"{first}-{last}");
        }

        async Task Whole(string path, byte[] expected)
        {
            using var response = await server.GetAsync(path);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var body = await response.BodyAsync();
            Assert.True(expected.AsSpan().SequenceEqual(body), path);
        }
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task AClientThatGoesAwayMidBodyDoesNotStopTheServer(AmpedMode mode)
    {
        var server = await Site.StartAsync(mode);
        using var client = server.CreateClient();

        for (var i = 0; i < 3; i++)
        {
            using (var response = await client.GetAsync("/big.bin", HttpCompletionOption.ResponseHeadersRead).WaitAsync(WaitLimit))
            {
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                await using var stream = await response.Content.ReadAsStreamAsync();
                var some = new byte[1000];
                await stream.ReadExactlyAsync(some).AsTask().WaitAsync(WaitLimit);
                Assert.Equal(StaticSite.Big.AsSpan(0, some.Length).ToArray(), some);
            }

            // The next request is served whole.
            using var next = await server.GetAsync("/big.bin").WaitAsync(WaitLimit);
            Assert.Equal(HttpStatusCode.OK, next.StatusCode);
            var body = await next.BodyAsync();
            Assert.True(StaticSite.Big.AsSpan().SequenceEqual(body), "big.bin after an aborted download");
        }
    }
}
