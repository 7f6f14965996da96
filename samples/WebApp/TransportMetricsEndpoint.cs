using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace WebApp;

/// <summary>
/// <c>GET /transport/metrics</c>: every instrument of the epoll transport's meter as plain text, one <c>name value</c>
/// line each, summed over the transport's reactors and sorted by name. The instruments are observable, so a request
/// reads the reactors' counters as they are now; whatever instruments the meter has are listed, none named here. On
/// the Sockets transport there is no such meter and the body is empty. The bench reads it around its measured loads.
/// </summary>
internal static class TransportMetricsEndpoint
{
    public const string Path = "/transport/metrics";

    /// <summary>The epoll transport's meter (<c>EpollTransportMetrics.MeterName</c>, internal to the transport).</summary>
    private const string MeterName = "EpollTransport";

    public static IEndpointRouteBuilder MapTransportMetrics(this IEndpointRouteBuilder endpoints)
    {
        var meterFactory = endpoints.ServiceProvider.GetRequiredService<IMeterFactory>();
        endpoints.MapGet(Path, context =>
        {
            var text = new StringBuilder();
            foreach (var (name, value) in Read(meterFactory))
            {
                text.Append(name).Append(' ').Append(value).Append('\n');
            }
            context.Response.ContentType = "text/plain; charset=utf-8";
            return context.Response.WriteAsync(text.ToString(), context.RequestAborted);
        });
        return endpoints;
    }

    /// <summary>The sum of each instrument's measurements, formatted invariantly, by instrument name.</summary>
    private static SortedDictionary<string, string> Read(IMeterFactory meterFactory)
    {
        var integers = new Dictionary<string, long>();
        var reals = new Dictionary<string, double>();
        // A listener per request: its callbacks add into this request's sums alone, so concurrent requests share
        // nothing and need no lock.
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                // The transport's meter comes from the host's IMeterFactory. A loop started on its own (the static-file
                // middleware's amped-loop) publishes a meter of the same name outside it: that loop is no reactor of
                // the transport, and with --transport sockets it would otherwise be listed.
                if (instrument.Meter.Name == MeterName && ReferenceEquals(instrument.Meter.Scope, meterFactory))
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, _, _) => integers[instrument.Name] = integers.GetValueOrDefault(instrument.Name) + value);
        listener.SetMeasurementEventCallback<int>((instrument, value, _, _) => integers[instrument.Name] = integers.GetValueOrDefault(instrument.Name) + value);
        listener.SetMeasurementEventCallback<double>((instrument, value, _, _) => reals[instrument.Name] = reals.GetValueOrDefault(instrument.Name) + value);
        listener.Start();
        listener.RecordObservableInstruments();

        var lines = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, value) in integers)
        {
            lines[name] = value.ToString(CultureInfo.InvariantCulture);
        }
        foreach (var (name, value) in reals)
        {
            lines[name] = value.ToString("R", CultureInfo.InvariantCulture);
        }
        return lines;
    }
}
