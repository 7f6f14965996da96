using StaticFiles.Amped.Caching;

namespace StaticFiles.Amped.Tests.Caching;

/// <summary>
/// The miss cache's count stays the number of entries it holds, whatever a change under the root does to an add in
/// flight: a count that only grows would make a full cache out of an empty one, until the next change.
/// </summary>
public sealed class MissCacheCountTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("amped-misscount-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public void AChangeInTheMiddleOfAnAddLeavesRoomForTheNextMiss()
    {
        ScriptedWatcher? watcher = null;
        using var root = new RootWatcher(_root, createWatcher: path => watcher = new ScriptedWatcher(path));
        var misses = new MissCache(root, capacity: 1);
        // The change (and the emptying it causes) lands between the entry going in and the add counting it.
        misses.AfterInsertForTests = _ => watcher!.ReportChange();

        misses.Add("/a", root.Generation);
        misses.AfterInsertForTests = null;
        misses.Add("/b", root.Generation);

        Assert.False(misses.Contains("/a"));
        Assert.True(misses.Contains("/b"));
    }

    /// <summary>A watcher whose events the test raises, on the test's thread.</summary>
    private sealed class ScriptedWatcher(string path) : FileSystemWatcher(path)
    {
        public void ReportChange() => OnChanged(new FileSystemEventArgs(WatcherChangeTypes.Changed, Path, "file.txt"));
    }
}
