using System.Globalization;
using System.Net;

namespace EpollTransport.Tests.Diagnostics;

/// <summary>
/// The sample's <c>GET /transport/metrics</c> (a child process, as the other sample tests run it): the transport's meter
/// as <c>name value</c> lines, which the bench reads around its measured loads to report wake-ups and sends per request.
/// </summary>
public sealed class SampleTransportMetricsTests
{
    private const int Requests = 5;

    [Fact]
    public async Task OnEpollEveryInstrumentIsALineAndTheSendsAreCounted()
    {
        using var server = new SampleProcess();
        var lines = await ReadAfterRequestsAsync(server);

        var values = new Dictionary<string, long>();
        foreach (var line in lines)
        {
            var parts = line.Split(' ');
            Assert.Equal(2, parts.Length);
            Assert.StartsWith("epoll.", parts[0], StringComparison.Ordinal);
            Assert.True(long.TryParse(parts[1], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value), line);
            Assert.True(values.TryAdd(parts[0], value), $"{parts[0]} is listed twice");
        }
        // Each response is at least one sendmsg; the bench's wake-ups per request need the eventfd writes listed.
        Assert.True(values["epoll.reactor.sends"] >= Requests, $"epoll.reactor.sends = {values["epoll.reactor.sends"]}");
        Assert.Contains("epoll.reactor.wakeups.sent", values.Keys);
        Assert.Equal(values.Keys.Order(StringComparer.Ordinal), values.Keys);
    }

    [Fact]
    public async Task OnSocketsTheBodyIsEmpty()
    {
        using var server = new SampleProcess(null, "--transport", "sockets");
        Assert.Empty(await ReadAfterRequestsAsync(server));
    }

    /// <summary>A few requests of the kind the bench loads the sample with, then the metrics, each on a connection of its own.</summary>
    private static async Task<string[]> ReadAfterRequestsAsync(SampleProcess server)
    {
        try
        {
            var port = await server.ListeningPort.WaitAsync(LongWaitLimit);
            for (var i = 0; i < Requests; i++)
            {
                using var client = new HttpClient();
                using var plaintext = await client.GetAsync($"http://127.0.0.1:{port}/plaintext").WaitAsync(WaitLimit);
                Assert.Equal(HttpStatusCode.OK, plaintext.StatusCode);
            }

            using var metricsClient = new HttpClient();
            using var response = await metricsClient.GetAsync($"http://127.0.0.1:{port}/transport/metrics").WaitAsync(WaitLimit);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
            var body = await response.Content.ReadAsStringAsync().WaitAsync(WaitLimit);
            return body.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        }
        catch (Exception e)
        {
            throw new InvalidOperationException($"{e.Message}\nServer output:\n{server.Output()}", e);
        }
    }
}
