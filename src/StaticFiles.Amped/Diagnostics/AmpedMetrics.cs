using System.Diagnostics.Metrics;
using StaticFiles.Amped.Disk;

namespace StaticFiles.Amped.Diagnostics;

/// <summary>
/// The <c>StaticFiles.Amped</c> meter: how often each cache answers, how often the loop's non-blocking calls
/// (<c>RWF_NOWAIT</c> reads, <c>RESOLVE_CACHED</c> opens) spare a helper round trip, how deep the helper queues are, and
/// how long a request waits for a helper. Counts are plain fields bumped on the request path and read by observable
/// instruments, so nobody listening costs one interlocked add per event; the wait histogram records only on the
/// helper path, which already costs a thread hop. Every measurement carries the middleware's request path, so two
/// <c>UseAmpedStaticFiles</c> in one app tell themselves apart.
/// </summary>
internal sealed class AmpedMetrics : IDisposable
{
    public const string MeterName = "StaticFiles.Amped";

    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    private readonly KeyValuePair<string, object?> _pathTag;
    private readonly Histogram<double> _helperWait;
    private long _fileCacheHits;
    private long _missCacheHits;
    private long _lookups;
    private long _contentHits;
    private long _readsNoWait;
    private long _readsHelper;
    private long _opensCached;
    private long _opensHelper;
    private long _refusals;
    private long _sendFileBodies;
    private long _residentOnLoop;
    private long _sendFileBytes;
    private long _copiedBytes;
    private readonly long[] _sendFileFallbacks = new long[Enum.GetValues<RegionFallback>().Length];

    public AmpedMetrics(IMeterFactory? meterFactory, string requestPath)
    {
        // A factory's meters belong to the factory (it disposes them, and may hand the same one to several callers).
        _ownsMeter = meterFactory is null;
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        _pathTag = new("amped.request_path", requestPath.Length == 0 ? "/" : requestPath);

        Counter("amped.file_cache.hits", "{request}", "Requests answered from the file cache: no open, no statx.", () => _fileCacheHits);
        Counter("amped.miss_cache.hits", "{request}", "Requests for paths remembered as naming no file: passed on with no disk call.", () => _missCacheHits);
        Counter("amped.lookups", "{request}", "Requests that neither cache could answer and that looked the path up on disk.", () => _lookups);
        Counter("amped.content_cache.hits", "{send}", "Bodies sent from the content cache, no read (a multipart response counts each of its ranges).", () => _contentHits);
        Counter("amped.reads.nowait", "{call}", "Reads answered on the loop from the page cache (preadv2 RWF_NOWAIT).", () => _readsNoWait);
        Counter("amped.reads.helper", "{call}", "Reads that missed the page cache and went to a helper.", () => _readsHelper);
        Counter("amped.opens.cached", "{call}", "Opens answered on the loop from the dentry cache (openat2 RESOLVE_CACHED).", () => _opensCached);
        Counter("amped.opens.helper", "{call}", "Opens whose path walk needed the disk and went to a helper.", () => _opensHelper);
        Counter("amped.helper.refusals", "{job}", "Jobs refused because their helper queue was full (the request got 503, or its response was aborted).", () => _refusals);
        Counter("amped.sendfile.resident", "{check}", "File ranges found in the page cache on the loop (mincore) before their sendfile: no helper read-ahead needed.", () => _residentOnLoop);
        Counter("amped.sendfile.bodies", "{send}", "File regions handed to the epoll transport, sent by sendfile with no copy: a body or a range, or a 4 MiB chunk of a larger one.", () => _sendFileBodies);
        _meter.CreateObservableCounter("amped.body.bytes", () => new[]
        {
            new Measurement<long>(Volatile.Read(ref _sendFileBytes), _pathTag, new("amped.body.path", "sendfile")),
            new Measurement<long>(Volatile.Read(ref _copiedBytes), _pathTag, new("amped.body.path", "copy")),
        }, "By", "Body bytes of files streamed from their fds, by path: sendfile (zero copy) or copy (read into memory, then written); cached contents are not counted.");
        _meter.CreateObservableCounter("amped.sendfile.fallbacks", () => Enum.GetValues<RegionFallback>()
            .Select(reason => new Measurement<long>(Volatile.Read(ref _sendFileFallbacks[(int)reason]), _pathTag, new("amped.reason", Reason(reason)))),
            "{send}", "Bodies streamed from an fd by copying although the server runs on the epoll transport, by reason.");
        _helperWait = _meter.CreateHistogram<double>("amped.helper.wait", "s",
            "Time from posting a job to a helper until its result is back on the loop: queueing plus the blocking call.");
    }

    /// <summary>Gauges read from the pool and the caches, which own those figures.</summary>
    public void Observe(HelperPool? helpers, Caching.FileCache? files, Func<long> invalidations)
    {
        if (helpers is not null)
        {
            _meter.CreateObservableUpDownCounter("amped.helper.queue_depth", () => new[]
            {
                Measurement(helpers.Queued(DiskQueue.Metadata), "metadata"),
                Measurement(helpers.Queued(DiskQueue.Data), "data"),
            }, "{job}", "Jobs waiting for a helper, per queue (metadata: open and statx; data: reads).");
        }
        if (files is not null)
        {
            _meter.CreateObservableUpDownCounter("amped.file_cache.entries", () => new Measurement<long>(files.Count, _pathTag),
                "{entry}", "Paths in the file cache, each holding its files open.");
            _meter.CreateObservableUpDownCounter("amped.content_cache.size", () => new Measurement<long>(files.ContentBytes, _pathTag),
                "By", "Bytes of file contents held in memory.");
            Counter("amped.file_cache.evictions", "{entry}", "File cache entries evicted to make room.", () => files.Evictions);
        }
        Counter("amped.invalidations", "{change}", "Changes under the root that emptied the caches.", invalidations);
    }

    public void FileCacheHit() => Interlocked.Increment(ref _fileCacheHits);

    public void MissCacheHit() => Interlocked.Increment(ref _missCacheHits);

    public void Lookup() => Interlocked.Increment(ref _lookups);

    public void ContentHit() => Interlocked.Increment(ref _contentHits);

    public void ReadNoWait() => Interlocked.Increment(ref _readsNoWait);

    public void OpenCached() => Interlocked.Increment(ref _opensCached);

    public void Refused() => Interlocked.Increment(ref _refusals);

    public void SentFile(long bytes)
    {
        Interlocked.Increment(ref _sendFileBodies);
        Interlocked.Add(ref _sendFileBytes, bytes);
    }

    public void ResidentOnLoop() => Interlocked.Increment(ref _residentOnLoop);

    public void Copied(long bytes) => Interlocked.Add(ref _copiedBytes, bytes);

    public void SendFileFellBack(RegionFallback reason) => Interlocked.Increment(ref _sendFileFallbacks[(int)reason]);

    private static string Reason(RegionFallback reason) => reason switch
    {
        RegionFallback.Protocol => "protocol",
        RegionFallback.BodyReplaced => "body_replaced",
        RegionFallback.Refused => "refused",
        _ => "dup_failed",
    };

    /// <summary>A job went to a helper (<paramref name="queue"/>) and came back after <paramref name="waited"/>.</summary>
    public void HelperJob(DiskQueue queue, TimeSpan waited)
    {
        Interlocked.Increment(ref queue == DiskQueue.Metadata ? ref _opensHelper : ref _readsHelper);
        if (_helperWait.Enabled)
        {
            _helperWait.Record(waited.TotalSeconds, _pathTag, new("amped.queue", queue == DiskQueue.Metadata ? "metadata" : "data"));
        }
    }

    public void Dispose()
    {
        if (_ownsMeter)
        {
            _meter.Dispose();
        }
    }

    private void Counter(string name, string unit, string description, Func<long> read)
        => _meter.CreateObservableCounter(name, () => new Measurement<long>(read(), _pathTag), unit, description);

    private Measurement<long> Measurement(long value, string queue) => new(value, _pathTag, new("amped.queue", queue));
}
