using System.Diagnostics.Metrics;

namespace StaticFiles.Amped.Tests.Loop;

/// <summary>
/// Eventfd wake-ups of epoll loops so far (posts that found the loop blocked), as the <c>EpollTransport</c> meter
/// reports them in <c>epoll.reactor.wakeups.sent</c>.
/// </summary>
internal static class LoopWakeUps
{
    /// <summary>Of the loop that <c>EpollLoop.Start</c> started with this thread name (its <c>epoll.loop</c> tag).</summary>
    public static long OfStartedLoop(string threadName)
        => Sum(_ => true, tags => tags.Contains(new("epoll.loop", threadName)));

    /// <summary>Of the reactors of the transport whose meter <paramref name="meterFactory"/> made.</summary>
    public static long OfTransport(IMeterFactory meterFactory)
        => Sum(meter => ReferenceEquals(meter.Scope, meterFactory), _ => true);

    private static long Sum(Func<Meter, bool> ofMeter, Func<KeyValuePair<string, object?>[], bool> ofMeasurement)
    {
        long total = 0;
        var seen = false;
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == "EpollTransport" && instrument.Name == "epoll.reactor.wakeups.sent" && ofMeter(instrument.Meter))
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            if (ofMeasurement(tags.ToArray()))
            {
                total += value;
                seen = true;
            }
        });
        listener.Start();
        listener.RecordObservableInstruments();
        Assert.True(seen, "No EpollTransport meter reported epoll.reactor.wakeups.sent for this loop.");
        return total;
    }
}
