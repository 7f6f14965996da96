namespace StaticFiles.Amped.Disk;

/// <summary><c>openat2</c> beneath the root, then <c>statx</c> of the fd: both may block on a cold disk.</summary>
internal sealed class OpenFileJob(IFileCalls calls, int rootFd, string relativePath) : DiskJob<OpenedFile>
{
    protected override OpenedFile Execute()
    {
        // "." opens the root itself; openat2 rejects an empty path.
        var opened = calls.OpenBeneath(rootFd, relativePath.Length == 0 ? "." : relativePath);
        if (!opened.IsSuccess)
        {
            return OpenedFile.Failed(opened.Errno);
        }
        var stat = calls.StatFd(opened.IntValue, out var statx);
        if (!stat.IsSuccess)
        {
            calls.Close(opened.IntValue);
            return OpenedFile.Failed(stat.Errno);
        }
        return new OpenedFile(opened.IntValue, 0, statx);
    }

    /// <summary>The same call on the calling thread (<see cref="AmpedMode.Sped"/>).</summary>
    public OpenedFile ExecuteHere() => Execute();
}
