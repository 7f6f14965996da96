using System.Diagnostics.Metrics;

namespace EpollTransport.Http;

/// <summary>
/// The <c>SendFileAsync</c> instruments of the <c>EpollTransport</c> meter: responses whose file went by sendfile, and
/// those copied, by reason. The bytes sent by sendfile are the transport's <c>epoll.connection.sendfile.bytes</c>.
/// </summary>
internal sealed class SendFileMetrics : IDisposable
{
    private static readonly KeyValuePair<string, object?>[] s_reasons =
    [
        new("epoll.sendfile.fallback.reason", "protocol"),
        new("epoll.sendfile.fallback.reason", "tls"),
        new("epoll.sendfile.fallback.reason", "head"),
        new("epoll.sendfile.fallback.reason", "no_body"),
        new("epoll.sendfile.fallback.reason", "chunked"),
        new("epoll.sendfile.fallback.reason", "small"),
        new("epoll.sendfile.fallback.reason", "refused"),
    ];

    private readonly Meter? _ownMeter;
    private readonly Counter<long> _responses;
    private readonly Counter<long> _fallbacks;
    private readonly Counter<long> _copied;

    public SendFileMetrics(IMeterFactory? meterFactory = null)
    {
        var meter = meterFactory?.Create(EpollTransportMetrics.MeterName);
        if (meter is null)
        {
            meter = _ownMeter = new Meter(EpollTransportMetrics.MeterName);
        }
        _responses = meter.CreateCounter<long>("epoll.sendfile.responses", "{response}",
            "SendFileAsync calls whose bytes went to the socket by sendfile (zero copy).");
        _fallbacks = meter.CreateCounter<long>("epoll.sendfile.fallbacks", "{response}",
            "SendFileAsync calls that copied the file instead, by reason (epoll.sendfile.fallback.reason).");
        _copied = meter.CreateCounter<long>("epoll.sendfile.copied_bytes", "By",
            "File bytes that SendFileAsync copied, where their count was known (a count was given, or the file was open).");
    }

    public void Sent() => _responses.Add(1);

    public void FellBack(SendFileFallback reason) => _fallbacks.Add(1, s_reasons[(int)reason]);

    public void Copied(long bytes)
    {
        if (bytes > 0)
        {
            _copied.Add(bytes);
        }
    }

    public void Dispose() => _ownMeter?.Dispose();
}
