using EpollTransport.Posix;

namespace StaticFiles.Amped.Disk;

/// <summary><c>openat2</c> beneath the root, then <c>statx</c> of the fd: both may block on a cold disk.</summary>
internal sealed class OpenFileJob(IFileCalls calls, int rootFd, string relativePath) : DiskJob<OpenedFile>
{
    protected override OpenedFile Execute() => Open(calls, rootFd, relativePath);

    /// <summary>The open and <c>statx</c>, waiting for the disk if need be (on a helper, or in <see cref="AmpedMode.Sped"/>).</summary>
    public static OpenedFile Open(IFileCalls calls, int rootFd, string relativePath)
    {
        var opened = calls.OpenBeneath(rootFd, PathArgument(relativePath));
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

    /// <summary>
    /// The open on the loop, when the kernel can answer it from its dentry cache (<c>RESOLVE_CACHED</c>), as
    /// <c>RWF_NOWAIT</c> does for data: a hot path costs no helper round trip. False when the walk would need the
    /// disk (or the kernel lacks the flag): then a helper opens it.
    /// </summary>
    public static bool TryOpenCached(IFileCalls calls, int rootFd, string relativePath, out OpenedFile file)
    {
        var opened = calls.OpenBeneathCached(rootFd, PathArgument(relativePath));
        if (!opened.IsSuccess)
        {
            // A cached answer that the path names nothing is as good as the helper's; anything else is asked again.
            file = OpenedFile.Failed(opened.Errno);
            return Errnos.NamesNothing(opened.Errno);
        }
        if (!calls.StatFdCached(opened.IntValue, out var statx).IsSuccess)
        {
            calls.Close(opened.IntValue);
            file = default;
            return false;
        }
        file = new OpenedFile(opened.IntValue, 0, statx);
        return true;
    }


    /// <summary>"." opens the root itself; <c>openat2</c> rejects an empty path.</summary>
    private static string PathArgument(string relativePath) => relativePath.Length == 0 ? "." : relativePath;
}
