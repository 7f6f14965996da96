using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Xunit.Abstractions;

namespace EpollTransport.Tests.Protocols;

/// <summary>
/// What the protocol suites share: the bound on their waits, the cases they run (every <see cref="KestrelHost"/>
/// transport, alone or with each cleartext HTTP version), a <see cref="KestrelHost"/> whose one endpoint the test
/// configures, and seeded payloads.
/// </summary>
public abstract class ProtocolTestBase(ITestOutputHelper output)
{
    public static TheoryData<string> Transports => KestrelHost.Transports;

    /// <summary>Every transport with <c>HTTP/1.1</c> and with <c>HTTP/2</c> (cleartext, by prior knowledge).</summary>
    public static TheoryData<string, string> TransportsAndVersions
    {
        get
        {
            var cases = new TheoryData<string, string>();
            foreach (var transport in KestrelHost.Transports)
            {
                cases.Add(transport, "HTTP/1.1");
                cases.Add(transport, "HTTP/2");
            }
            return cases;
        }
    }

    /// <summary><paramref name="length"/> bytes, the same for the same length.</summary>
    internal static byte[] Payload(int length)
    {
        var bytes = new byte[length];
        new Random(length).NextBytes(bytes);
        return bytes;
    }

    /// <summary>Starts a <see cref="KestrelHost"/> on <paramref name="transport"/> that logs to the test's output.</summary>
    /// <param name="transport">A <see cref="KestrelHost"/> transport name.</param>
    /// <param name="endpoint">Configures the one endpoint: protocols, HTTPS.</param>
    /// <param name="map">Adds the middleware and endpoints the test needs.</param>
    protected Task<KestrelHost> StartAsync(string transport, Action<ListenOptions> endpoint, Action<WebApplication> map)
        => KestrelHost.StartAsync(transport, map, output, endpoint);

    /// <summary>As <see cref="StartAsync(string, Action{ListenOptions}, Action{WebApplication})"/>, with services of the test's own.</summary>
    protected Task<KestrelHost> StartAsync(string transport, Action<ListenOptions> endpoint, Action<WebApplication> map, Action<Microsoft.Extensions.DependencyInjection.IServiceCollection> services)
        => KestrelHost.StartAsync(transport, map, output, endpoint, services: services);
}
