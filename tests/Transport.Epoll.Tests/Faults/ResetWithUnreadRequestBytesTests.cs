using Xunit.Abstractions;

namespace EpollTransport.Tests.Faults;

/// <summary>
/// Clients send part of a request and reset (RST) before the server has read those bytes, so that the bytes and the
/// reset reach the reactor in one edge. Every such connection must end. Before the transport kept reading after
/// EPOLLHUP/EPOLLERR, TCP_INQ's "queue empty" (which does not count a pending reset) left 33 to 67 of 100 open.
/// </summary>
public sealed class ResetWithUnreadRequestBytesTests(ITestOutputHelper output)
{
    private const int Clients = 100;

    public static TheoryData<string> Transports => KestrelHost.Transports;

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task AResetBehindUnreadRequestBytesEndsTheConnection(string transport)
    {
        await using var server = await FaultServer.StartAsync(transport, FaultServer.MapOk, output);
        using var cts = new CancellationTokenSource(WaitLimit);
        await Task.WhenAll(Enumerable.Range(0, Clients).Select(async i =>
        {
            var client = await RawHttpClient.ConnectAsync(server.BaseAddress, cts.Token);
            try
            {
                var seen = server.Connections.SeenAsync(client.LocalPort);
                // Part of a request: the bytes and the RST reach the server together, more often than not.
                await client.SendAsync("GET /ok/never HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Par", cts.Token);
                await seen.WaitAsync(cts.Token);
            }
            finally
            {
                client.Reset();
            }
        }));
        await server.AssertAllConnectionsGoneAsync(total: Clients);
    }
}
