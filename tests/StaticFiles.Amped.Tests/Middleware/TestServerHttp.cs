using System.Net;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.TestHost;

namespace StaticFiles.Amped.Tests.Middleware;

/// <summary>Requests against a <see cref="TestServer"/>, the way the middleware tests need them.</summary>
internal static class TestServerHttp
{
    /// <summary>
    /// Sends <paramref name="method"/> for <paramref name="pathAndQuery"/> through an <see cref="HttpClient"/>, with the
    /// given request headers added without validation. <see cref="Uri"/> canonicalizes the path (it removes dot
    /// segments; TestHost's ClientHandler cannot take a Uri that opts out of that), and TestHost decodes it as
    /// Kestrel would, except <c>%2F</c>; <see cref="SendPathAsync"/> sends a path that nothing normalized.
    /// </summary>
    public static async Task<HttpResponseMessage> SendAsync(this TestServer server, string method, string pathAndQuery, params (string Name, string Value)[] headers)
    {
        using var client = server.CreateClient();
        using var request = new HttpRequestMessage(new HttpMethod(method), new Uri("http://localhost" + pathAndQuery, UriKind.Absolute));
        foreach (var (name, value) in headers)
        {
            Assert.True(request.Headers.TryAddWithoutValidation(name, value), name);
        }
        return await client.SendAsync(request);
    }

    public static Task<HttpResponseMessage> GetAsync(this TestServer server, string pathAndQuery, params (string Name, string Value)[] headers)
        => server.SendAsync(HttpMethods.Get, pathAndQuery, headers);

    /// <summary>
    /// GETs <paramref name="pathAndQuery"/> until the response has <paramref name="status"/>, for at most 30 s: a
    /// change on disk reaches the middleware's path cache through inotify, a moment after the write returns.
    /// </summary>
    public static Task<HttpResponseMessage> GetUntilAsync(this TestServer server, string pathAndQuery, HttpStatusCode status)
        => server.GetUntilAsync(pathAndQuery, response => response.StatusCode == status);

    /// <summary>
    /// GETs <paramref name="pathAndQuery"/> until <paramref name="done"/> holds for the response, for at most 30 s: a
    /// change on disk reaches the middleware's caches through inotify, a moment after the write returns.
    /// </summary>
    public static async Task<HttpResponseMessage> GetUntilAsync(this TestServer server, string pathAndQuery, Func<HttpResponseMessage, bool> done)
    {
        using var deadline = new CancellationTokenSource(WaitLimit);
        while (true)
        {
            var response = await server.GetAsync(pathAndQuery);
            if (done(response) || deadline.IsCancellationRequested)
            {
                return response;
            }
            response.Dispose();
            await Task.Yield();
        }
    }

    public static Task<HttpResponseMessage> HeadAsync(this TestServer server, string pathAndQuery, params (string Name, string Value)[] headers)
        => server.SendAsync(HttpMethods.Head, pathAndQuery, headers);

    /// <summary>
    /// Sends a request whose <see cref="HttpRequest.Path"/> is set directly: an already-decoded path that no client
    /// or URI parser had a chance to normalize, as a server that decodes everything would hand it over.
    /// </summary>
    public static async Task<(int Status, IHeaderDictionary Headers, byte[] Body)> SendPathAsync(this TestServer server, string method, PathString path)
    {
        var context = await server.SendAsync(c =>
        {
            c.Request.Method = method;
            c.Request.Path = path;
        });
        using var body = new MemoryStream();
        await context.Response.Body.CopyToAsync(body);
        return (context.Response.StatusCode, context.Response.Headers, body.ToArray());
    }

    /// <summary>A response header, from the message or its content, joined with ", "; null when absent.</summary>
    public static string? Header(this HttpResponseMessage response, string name)
        => response.Headers.TryGetValues(name, out var values) || response.Content.Headers.TryGetValues(name, out values)
            ? string.Join(", ", values)
            : null;

    /// <summary>True when the terminal app after the middleware answered: the middleware let the request through.</summary>
    public static bool FellThrough(this HttpResponseMessage response) => response.Header(StaticSite.FellThroughHeader) == "1";

    public static Task<byte[]> BodyAsync(this HttpResponseMessage response) => response.Content.ReadAsByteArrayAsync();
}
