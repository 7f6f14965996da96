using System.Diagnostics.Metrics;
using StaticFiles.Amped.Tests.Caching;
using StaticFiles.Amped.Tests.Disk;

namespace StaticFiles.Amped.Tests.Diagnostics;

/// <summary>
/// The <c>StaticFiles.Amped</c> meter counts what each request cost: which cache answered, which calls the loop made
/// itself, and what went to a helper and how long that took.
/// </summary>
public sealed class AmpedMetricsTests : IAsyncLifetime
{
    private readonly FileServerHost _host = new();
    private readonly OneMeterFactory _meters = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await _host.DisposeAsync();
        _meters.Dispose();
    }

    [Fact]
    public async Task EachCacheAndEachLoopCallIsCounted()
    {
        File.WriteAllText(_host.PathOf("a.txt"), "cached");
        File.WriteAllBytes(_host.PathOf("big.txt"), new byte[300 * 1024]);
        var client = await _host.StartAsync(new AmpedStaticFileOptions(), meterFactory: _meters);

        await client.GetStringAsync("/a.txt");
        await client.GetStringAsync("/a.txt");
        await client.GetByteArrayAsync("/big.txt");
        await client.GetStringAsync("/missing");
        await client.GetStringAsync("/missing");

        var totals = Collect();
        Assert.Equal(1, totals["amped.file_cache.hits"]);
        Assert.Equal(1, totals["amped.miss_cache.hits"]);
        Assert.Equal(3, totals["amped.lookups"]);
        Assert.Equal(1, totals["amped.content_cache.hits"]);
        Assert.True(totals["amped.reads.nowait"] >= 1);
        // Seven opens: a.txt and big.txt with their .br and .gz probes, and /missing. The two files were just written,
        // so their walk is in the dentry cache; a name never looked up before may not be.
        Assert.Equal(7, totals["amped.opens.cached"] + totals["amped.opens.helper"]);
        Assert.True(totals["amped.opens.cached"] >= 2);
        Assert.Equal(2, totals["amped.file_cache.entries"]);
        Assert.Equal(6, totals["amped.content_cache.size"]);
        Assert.Equal(0, totals["amped.helper.queue_depth"]);
    }

    [Fact]
    public async Task AJobSentToAHelperIsCountedAndItsWaitRecorded()
    {
        File.WriteAllText(_host.PathOf("a.txt"), "cold");
        var client = await _host.StartAsync(new AmpedStaticFileOptions { RequestPath = "/static" }, new ColdDentries(), _meters);
        var waits = new List<(double Seconds, string? Queue, string? Path)>();
        using var listener = Listen<double>((instrument, value, tags) =>
        {
            if (instrument.Name == "amped.helper.wait")
            {
                lock (waits)
                {
                    waits.Add((value, Tag(tags, "amped.queue"), Tag(tags, "amped.request_path")));
                }
            }
        });

        Assert.Equal("cold", await client.GetStringAsync("/static/a.txt"));

        Assert.True(Collect()["amped.opens.helper"] >= 1);
        lock (waits)
        {
            Assert.Contains(waits, w => w.Queue == "metadata" && w.Path == "/static" && w.Seconds >= 0);
        }
    }

    /// <summary>Every observable instrument of the meter, read once, summed over its tags.</summary>
    private Dictionary<string, long> Collect()
    {
        var totals = new Dictionary<string, long>();
        using var listener = Listen<long>((instrument, value, _) => totals[instrument.Name] = totals.GetValueOrDefault(instrument.Name) + value);
        listener.RecordObservableInstruments();
        return totals;
    }

    private MeterListener Listen<T>(Action<Instrument, T, ReadOnlySpan<KeyValuePair<string, object?>>> measured)
        where T : struct
    {
        var listener = new MeterListener
        {
            // Only this test's meter: other tests' servers run in parallel with meters of the same name.
            InstrumentPublished = (instrument, l) =>
            {
                if (ReferenceEquals(instrument.Meter, _meters.Created))
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<T>((instrument, value, tags, _) => measured(instrument, value, tags));
        listener.Start();
        return listener;
    }

    private static string? Tag(ReadOnlySpan<KeyValuePair<string, object?>> tags, string key)
    {
        foreach (var tag in tags)
        {
            if (tag.Key == key)
            {
                return tag.Value as string;
            }
        }
        return null;
    }

    /// <summary>Hands out one meter and remembers it, so that a listener can tell it from other tests' meters.</summary>
    private sealed class OneMeterFactory : IMeterFactory
    {
        public Meter? Created { get; private set; }

        public Meter Create(MeterOptions options) => Created ??= new Meter(options);

        public void Dispose() => Created?.Dispose();
    }
}
