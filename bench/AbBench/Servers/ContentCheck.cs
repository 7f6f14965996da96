using System.Net;

namespace AbBench;

/// <summary>
/// Checks once per server, before any load, that it serves the generated files whole: status 200, text/plain,
/// and every byte as on disk. wrk only counts statuses >= 400 and bytes, so a server that answered 200 with the
/// wrong body (or a 304, or a cut-off one) would otherwise pass.
/// </summary>
internal static class ContentCheck
{
    public static async Task VerifyAsync(string server, int port, string root, IEnumerable<string> relativePaths, CancellationToken ct)
    {
        using var handler = new SocketsHttpHandler { UseProxy = false, AutomaticDecompression = DecompressionMethods.None };
        using var client = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(30) };
        foreach (var path in relativePaths)
        {
            var url = $"http://127.0.0.1:{port}/{path}";
            try
            {
                using var response = await client.GetAsync(url, ct);
                var body = await response.Content.ReadAsByteArrayAsync(ct);
                var expected = await File.ReadAllBytesAsync(Path.Combine(root, path), ct);
                var problem = response.StatusCode != HttpStatusCode.OK ? $"status {(int)response.StatusCode}, not 200"
                    : response.Content.Headers.ContentType?.MediaType != "text/plain" ? $"Content-Type '{response.Content.Headers.ContentType}', not text/plain"
                    : !body.AsSpan().SequenceEqual(expected) ? $"{body.Length:N0} bytes that differ from the file's {expected.Length:N0}"
                    : null;
                if (problem is not null)
                {
                    throw new BenchException($"{server} answered GET /{path} with {problem}.");
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
            {
                throw new BenchException($"{server}: GET /{path} failed: {e.Message}");
            }
        }
    }
}
