using Microsoft.Extensions.Logging;
using StaticFiles.Amped.Tests.Diagnostics;

namespace StaticFiles.Amped.Tests.Caching;

/// <summary>
/// A lost inotify watch (out of watches, or an overflowed queue) is logged, and from then on the caches trust
/// nothing they would need the watcher to invalidate: a rewritten, a replaced and a new file are served as they are
/// now, although no change is reported; once a watch is made again on a later tick, the caches work as before.
/// </summary>
public sealed class LostWatchTests : IAsyncLifetime
{
    private readonly FileServerHost _host = new();
    private readonly RecordingLogger _log = new();
    private readonly ConcurrentWatchers _watchers = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => _host.DisposeAsync().AsTask();

    [Fact]
    public async Task AfterALostWatchAWarningIsLoggedAndTheCachesHideNoChange()
    {
        File.WriteAllText(_host.PathOf("rewritten.txt"), "before");
        File.WriteAllText(_host.PathOf("replaced.txt"), "before");
        var client = await _host.StartAsync(new AmpedStaticFileOptions(), logger: _log, createWatcher: _watchers.Create);
        await AssertServedAsync(client, rewritten: "before", replaced: "before", added: "endpoint");

        _watchers.Refuse = true;
        _watchers.First.Lose();
        // Asked again after the loss: caches that trusted the deaf watcher would keep these answers for good.
        await AssertServedAsync(client, rewritten: "before", replaced: "before", added: "endpoint");
        File.WriteAllText(_host.PathOf("rewritten.txt"), "rewritten in place, longer");
        File.WriteAllText(_host.PathOf("replacement.tmp"), "replaced by a rename");
        File.Move(_host.PathOf("replacement.tmp"), _host.PathOf("replaced.txt"), overwrite: true);
        File.WriteAllText(_host.PathOf("added.txt"), "added");

        await AssertServedAsync(client, rewritten: "rewritten in place, longer", replaced: "replaced by a rename", added: "added");
        var warning = Assert.Single(_log.Entries, entry => entry.EventId.Id == 12);
        Assert.Equal(LogLevel.Warning, warning.Level);
        Assert.Equal("WatchLost", warning.EventId.Name);
    }

    [Fact]
    public async Task AWatchMadeAgainOnALaterTickLetsTheCachesAnswerAgain()
    {
        File.WriteAllText(_host.PathOf("a.txt"), "before");
        var client = await _host.StartAsync(new AmpedStaticFileOptions(), logger: _log, createWatcher: _watchers.Create);
        Assert.Equal("before", await client.GetStringAsync("/a.txt"));
        _watchers.Refuse = true;
        _watchers.First.Lose();

        var restored = _host.Files.NextWatchRestored;
        _watchers.Refuse = false;
        await restored.WaitAsync(WaitLimit);

        Assert.Equal(2, _watchers.Count);
        Assert.Equal("before", await client.GetStringAsync("/a.txt"));
        var lookups = _host.Files.Lookups;
        Assert.Equal("before", await client.GetStringAsync("/a.txt"));
        Assert.Equal(lookups, _host.Files.Lookups);
        // The new watch reports changes again.
        var changed = _host.Files.NextCacheInvalidation;
        File.WriteAllText(_host.PathOf("a.txt"), "after");
        await changed.WaitAsync(WaitLimit);
        Assert.Equal("after", await client.GetStringAsync("/a.txt"));
        var restoredEntry = Assert.Single(_log.Entries, entry => entry.EventId.Id == 13);
        Assert.Equal(LogLevel.Information, restoredEntry.Level);
    }

    private static async Task AssertServedAsync(HttpClient client, string rewritten, string replaced, string added)
    {
        Assert.Equal(rewritten, await client.GetStringAsync("/rewritten.txt"));
        Assert.Equal(replaced, await client.GetStringAsync("/replaced.txt"));
        Assert.Equal(added, await client.GetStringAsync("/added.txt"));
    }

    /// <summary>The watchers a <see cref="RootWatcher"/> made, and whether the next one is refused as out of inotify watches.</summary>
    private sealed class ConcurrentWatchers
    {
        private readonly List<LosableWatcher> _made = [];

        public volatile bool Refuse;

        public LosableWatcher First
        {
            get
            {
                lock (_made)
                {
                    return _made[0];
                }
            }
        }

        public int Count
        {
            get
            {
                lock (_made)
                {
                    return _made.Count;
                }
            }
        }

        public FileSystemWatcher Create(string path)
        {
            if (Refuse)
            {
                throw new IOException("The configured user limit on the number of inotify watches has been reached.");
            }
            var watcher = new LosableWatcher(path);
            lock (_made)
            {
                _made.Add(watcher);
            }
            return watcher;
        }
    }

    /// <summary>
    /// A watcher whose watch the test can lose: it stops listening, so changes after it go unreported (as below a
    /// folder whose watch the kernel refused, or in an overflowed queue), and raises Error as .NET does then.
    /// </summary>
    private sealed class LosableWatcher(string path) : FileSystemWatcher(path)
    {
        public void Lose()
        {
            EnableRaisingEvents = false;
            OnError(new ErrorEventArgs(new IOException("The configured user limit on the number of inotify watches has been reached.")));
        }
    }
}
