using Microsoft.AspNetCore.Http.Features;

namespace WebApp;

/// <summary>
/// The sample's endpoints, written as plain <see cref="RequestDelegate"/>s: no parameter binding, no
/// request-delegate generation or reflection, so they stay trim- and AOT-safe and cost next to nothing per request.
/// </summary>
internal static class SampleEndpoints
{
    private static readonly byte[] HelloWorld = "Hello, World!"u8.ToArray();
    private static readonly JsonMessage HelloMessage = new("Hello, World!");

    public static IEndpointRouteBuilder MapSampleEndpoints(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/plaintext", Plaintext);
        endpoints.MapGet("/json", Json);
        endpoints.MapPost("/echo", Echo);
        return endpoints;
    }

    private static Task Plaintext(HttpContext context)
    {
        var response = context.Response;
        response.ContentType = "text/plain";
        response.ContentLength = HelloWorld.Length;
        return response.Body.WriteAsync(HelloWorld, context.RequestAborted).AsTask();
    }

    private static Task Json(HttpContext context) =>
        context.Response.WriteAsJsonAsync(HelloMessage, AppJsonContext.Default.JsonMessage, cancellationToken: context.RequestAborted);

    private static async Task Echo(HttpContext context)
    {
        // The body is streamed, never held whole, so Kestrel's 30 MB request-body cap has nothing to protect here.
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } maxBodySize)
        {
            maxBodySize.MaxRequestBodySize = null;
        }

        var request = context.Request;
        var response = context.Response;
        response.ContentType = request.ContentType ?? "application/octet-stream";
        // The reply has exactly the request's length; saying so spares HTTP/1.1 the chunked framing.
        response.ContentLength = request.ContentLength;
        await request.BodyReader.CopyToAsync(response.BodyWriter, context.RequestAborted);
    }
}
