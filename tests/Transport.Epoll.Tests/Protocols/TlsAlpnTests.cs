using System.Globalization;
using System.Net;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Text;
using EpollTransport.Tests.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;
using Xunit.Abstractions;

namespace EpollTransport.Tests.Protocols;

/// <summary>
/// HTTPS through the transport: Kestrel's TLS runs over the transport's pipes, and ALPN picks HTTP/1.1 or HTTP/2
/// on one endpoint that offers both. The client trusts exactly the test's self-signed certificate.
/// </summary>
public sealed class TlsAlpnTests(ITestOutputHelper output) : ProtocolTestBase(output)
{
    private const int OneMiB = 1024 * 1024;

    /// <summary>
    /// Transport × (the version the client asks for, its policy, the version the connection must settle on, the
    /// protocol ALPN must select).
    /// </summary>
    public static TheoryData<string, string, HttpVersionPolicy, string, string> Cases
    {
        get
        {
            var cases = new TheoryData<string, string, HttpVersionPolicy, string, string>();
            foreach (var name in KestrelHost.Transports)
            {
                // HTTP/1.1 only: SocketsHttpHandler sends no ALPN extension, and Kestrel falls back to HTTP/1.1.
                cases.Add(name, "1.1", HttpVersionPolicy.RequestVersionExact, "1.1", "");
                // The client offers only h2.
                cases.Add(name, "2.0", HttpVersionPolicy.RequestVersionExact, "2.0", "h2");
                // The client offers h2 and http/1.1; Kestrel prefers h2.
                cases.Add(name, "1.1", HttpVersionPolicy.RequestVersionOrHigher, "2.0", "h2");
                // The client offers h2 and http/1.1, preferring h2.
                cases.Add(name, "2.0", HttpVersionPolicy.RequestVersionOrLower, "2.0", "h2");
            }
            return cases;
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task AlpnNegotiatesTheVersionAndBodiesCrossTlsIntact(string transport, string requested, HttpVersionPolicy policy, string expected, string expectedAlpn)
    {
        await using var host = await StartAsync(transport);
        using var handler = new SocketsHttpHandler
        {
            SslOptions = { RemoteCertificateValidationCallback = TestCertificate.Validate },
        };
        using var client = new HttpClient(handler)
        {
            BaseAddress = host.BaseAddress,
            DefaultRequestVersion = Version.Parse(requested),
            DefaultVersionPolicy = policy,
            Timeout = WaitLimit,
        };
        var expectedVersion = Version.Parse(expected);
        var expectedProtocol = expectedVersion.Major == 2 ? "HTTP/2" : "HTTP/1.1";

        using (var response = await client.GetAsync($"download/{OneMiB}").WaitAsync(WaitLimit))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(expectedVersion, response.Version);
            Assert.Equal(expectedAlpn, Header(response, "X-Alpn"));
            Assert.Equal(expectedProtocol, Header(response, "X-Protocol"));
            Assert.StartsWith("Tls1", Header(response, "X-Tls"), StringComparison.Ordinal);
            host.AssertServedBy(response);
            var body = await response.Content.ReadAsByteArrayAsync().WaitAsync(WaitLimit);
            Assert.Equal(SHA256.HashData(Payload(OneMiB)), SHA256.HashData(body));
        }

        var upload = Payload(OneMiB + 17);
        using (var content = new ByteArrayContent(upload))
        using (var response = await client.PostAsync("sha256", content).WaitAsync(WaitLimit))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(expectedVersion, response.Version);
            host.AssertServedBy(response);
            var answer = await response.Content.ReadAsStringAsync().WaitAsync(WaitLimit);
            Assert.Equal($"{upload.Length}:{Convert.ToHexString(SHA256.HashData(upload))}", answer);
        }

        // Both requests went over one TLS connection.
        Assert.Single(host.ConnectionIds);
        Assert.Empty(host.LoggedErrors);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task ClientWithoutTheCertificateRefusesTheServer(string transport)
    {
        await using var host = await StartAsync(transport);
        // The default validation: the self-signed certificate is not trusted, so the test's own callback is what
        // lets the other tests in; it accepts nothing else.
        using var client = new HttpClient { BaseAddress = host.BaseAddress, Timeout = WaitLimit };

        var failure = await Assert.ThrowsAsync<HttpRequestException>(() => client.GetAsync("download/1").WaitAsync(WaitLimit));

        Assert.IsType<AuthenticationException>(failure.InnerException);
    }

    /// <summary>A host whose one endpoint offers HTTP/1.1 and HTTP/2 over TLS, with the test's certificate.</summary>
    private Task<KestrelHost> StartAsync(string transport)
        => StartAsync(transport,
            endpoint =>
            {
                endpoint.Protocols = HttpProtocols.Http1AndHttp2;
                endpoint.UseHttps(TestCertificate.Server);
            },
            MapEndpoints);

    private static void MapEndpoints(WebApplication app)
    {
        app.MapGet("/download/{length:int}", async context =>
        {
            var tls = context.Features.Get<ITlsHandshakeFeature>();
            var alpn = context.Features.Get<ITlsApplicationProtocolFeature>();
            context.Response.Headers["X-Alpn"] = alpn is null ? "(none)" : Encoding.ASCII.GetString(alpn.ApplicationProtocol.Span);
            context.Response.Headers["X-Protocol"] = context.Request.Protocol;
            context.Response.Headers["X-Tls"] = tls is null ? "(none)" : tls.Protocol.ToString();
            var payload = Payload(int.Parse((string)context.Request.RouteValues["length"]!, CultureInfo.InvariantCulture));
            context.Response.ContentLength = payload.Length;
            // Uneven pieces, so TLS records and transport writes do not line up with the application's writes.
            for (int offset = 0, size = 1; offset < payload.Length; offset += size, size = size * 7 % 100_003 + 1)
            {
                size = Math.Min(size, payload.Length - offset);
                await context.Response.BodyWriter.WriteAsync(payload.AsMemory(offset, size), context.RequestAborted);
            }
        });

        app.MapPost("/sha256", async context =>
            await context.Response.WriteAsync(await BodyHash.OfRequestAsync(context), context.RequestAborted));
    }

    private static string Header(HttpResponseMessage response, string name)
        => response.Headers.TryGetValues(name, out var values) ? string.Join(",", values) : "(missing)";
}
