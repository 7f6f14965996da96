using System.Diagnostics.Metrics;
using System.Net;
using System.Text;
using EpollTransport.Tests.Transport;
using static EpollTransport.Tests.Transport.TransportHarness;

namespace EpollTransport.Tests.Diagnostics;

public class MetricsTests
{
    [Fact]
    public async Task TheMeterReportsPerReactorCounters()
    {
        await using var server = await TransportServer.StartEchoAsync(new IPEndPoint(IPAddress.Loopback, 0), Configure(reactorCount: 2, inline: false));
        using var cts = new CancellationTokenSource(WaitLimit);
        for (int i = 0; i < 20; i++)
        {
            await AssertEchoRoundTripAsync(server.EndPoint, Encoding.ASCII.GetBytes($"metrics #{i}"), cts.Token);
        }
        await server.HandlersCompleted();

        var totals = new Dictionary<string, long>();
        var reactors = new HashSet<object?>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == "EpollTransport")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            totals[instrument.Name] = totals.GetValueOrDefault(instrument.Name) + value;
            foreach (var tag in tags)
            {
                if (tag.Key == "epoll.reactor")
                {
                    reactors.Add(tag.Value);
                }
            }
        });
        listener.Start();
        listener.RecordObservableInstruments();

        Assert.Equal(20, totals["epoll.reactor.accepts"]);
        Assert.True(totals["epoll.reactor.waits"] > 0);
        // Each response is sent once, by the reactor or (write-through) by the thread that flushed it.
        Assert.True(totals["epoll.reactor.sends"] + totals["epoll.connection.sends.write_through"] >= 20);
        Assert.Equal(0, totals["epoll.reactor.connections.active"]);
        Assert.Equal(0, totals["epoll.reactor.connections.paused"]);
        Assert.Equal(0, totals["epoll.reactor.ready_list.length"]);
        Assert.Equal([0, 1], reactors.Select(r => Assert.IsType<int>(r)).Order());
    }
}
