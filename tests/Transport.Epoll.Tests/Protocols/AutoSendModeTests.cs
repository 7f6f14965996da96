using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace EpollTransport.Tests.Protocols;

/// <summary>
/// <see cref="EpollSendMode.Auto"/> picks the send path per connection from its first bytes: write-through for HTTP/2
/// (the cleartext preface, or <c>h2</c> in a TLS ClientHello's ALPN list), the reactor for HTTP/1.1. Seen from the
/// server's own meter: write-through sends are counted apart from the reactor's.
/// </summary>
public sealed class AutoSendModeTests(ITestOutputHelper output) : ProtocolTestBase(output)
{
    private const int Requests = 8;

    /// <summary>TLS or not, the version the client asks for and its policy, the version it must get, and whether Auto writes through.</summary>
    public static TheoryData<bool, string, HttpVersionPolicy, string, bool> Cases => new()
    {
        // SocketsHttpHandler sends no ALPN extension for HTTP/1.1 alone.
        { true, "1.1", HttpVersionPolicy.RequestVersionExact, "1.1", false },
        { true, "2.0", HttpVersionPolicy.RequestVersionExact, "2.0", true },
        // It offers h2 and http/1.1; Kestrel selects h2.
        { true, "1.1", HttpVersionPolicy.RequestVersionOrHigher, "2.0", true },
        { false, "1.1", HttpVersionPolicy.RequestVersionExact, "1.1", false },
        // HTTP/2 by prior knowledge: the preface.
        { false, "2.0", HttpVersionPolicy.RequestVersionExact, "2.0", true },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task AutoWritesThroughForHttp2AndLeavesHttp1ToTheReactor(bool tls, string requested, HttpVersionPolicy policy, string expected, bool writesThrough)
    {
        await using var host = await StartAsync(tls, h2c: !tls && expected == "2.0");
        using var handler = new SocketsHttpHandler { SslOptions = { RemoteCertificateValidationCallback = TestCertificate.Validate } };

        await AssertRequestsAsync(host, handler, requested, policy, expected);

        var sends = Sends(host);
        if (writesThrough)
        {
            Assert.True(sends.WriteThrough > 0, $"no write-through send; reactor sends: {sends.Reactor}");
        }
        else
        {
            Assert.Equal(0, sends.WriteThrough);
            Assert.True(sends.Reactor >= Requests, $"reactor sends: {sends.Reactor}");
        }
    }

    [Fact]
    public async Task AClientHelloSplitAcrossManySegmentsStillFindsH2()
    {
        await using var host = await StartAsync(tls: true);
        using var handler = new SocketsHttpHandler
        {
            SslOptions = { RemoteCertificateValidationCallback = TestCertificate.Validate },
            // The client's first bytes go out one byte per send with Nagle off, so the ClientHello reaches the
            // server in pieces (how many the reactor reads at once is the kernel's choice; every split is in
            // TlsClientHelloTests).
            ConnectCallback = async (context, cancellationToken) =>
            {
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
                return new TrickleStream(socket, trickledBytes: 600);
            },
        };

        await AssertRequestsAsync(host, handler, "2.0", HttpVersionPolicy.RequestVersionExact, "2.0");

        Assert.True(Sends(host).WriteThrough > 0);
    }

    private static async Task AssertRequestsAsync(KestrelHost host, SocketsHttpHandler handler, string requested, HttpVersionPolicy policy, string expected)
    {
        using var client = new HttpClient(handler)
        {
            BaseAddress = host.BaseAddress,
            DefaultRequestVersion = Version.Parse(requested),
            DefaultVersionPolicy = policy,
            Timeout = WaitLimit,
        };
        for (var i = 0; i < Requests; i++)
        {
            using var response = await client.GetAsync($"echo/{i}").WaitAsync(WaitLimit);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(Version.Parse(expected), response.Version);
            Assert.Equal($"echo {i}", await response.Content.ReadAsStringAsync().WaitAsync(WaitLimit));
        }
        Assert.Empty(host.LoggedErrors);
    }

    /// <summary>The server's sends so far, from its own meter: write-through ones and the reactor's.</summary>
    private static (long WriteThrough, long Reactor) Sends(KestrelHost host)
    {
        var factory = host.Services.GetRequiredService<IMeterFactory>();
        long writeThrough = 0, reactor = 0;
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Scope == factory && instrument.Meter.Name == "EpollTransport")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, _, _) =>
        {
            switch (instrument.Name)
            {
                case "epoll.connection.sends.write_through":
                    writeThrough += value;
                    break;
                case "epoll.reactor.sends":
                    reactor += value;
                    break;
            }
        });
        listener.Start();
        listener.RecordObservableInstruments();
        return (writeThrough, reactor);
    }

    private Task<KestrelHost> StartAsync(bool tls, bool h2c = false)
        => StartAsync(KestrelHost.Epoll,
            endpoint =>
            {
                // Without TLS, Kestrel takes HTTP/2 by prior knowledge only on an endpoint limited to it.
                endpoint.Protocols = tls ? HttpProtocols.Http1AndHttp2 : h2c ? HttpProtocols.Http2 : HttpProtocols.Http1;
                if (tls)
                {
                    endpoint.UseHttps(TestCertificate.Server);
                }
            },
            app => app.MapGet("/echo/{n:int}", (int n) => Results.Text($"echo {n}")));

    /// <summary>A socket stream that sends its first <c>trickledBytes</c> bytes one byte per send.</summary>
    private sealed class TrickleStream(Socket socket, int trickledBytes) : NetworkStream(socket, ownsSocket: true)
    {
        private int _trickle = trickledBytes;

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            while (_trickle > 0 && !buffer.IsEmpty)
            {
                await base.WriteAsync(buffer[..1], cancellationToken);
                buffer = buffer[1..];
                _trickle--;
            }
            if (!buffer.IsEmpty)
            {
                await base.WriteAsync(buffer, cancellationToken);
            }
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
            => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
    }
}
