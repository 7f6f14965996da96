using EpollTransport.Posix;
using StaticFiles.Amped.Caching;
using StaticFiles.Amped.Interop;

namespace StaticFiles.Amped.Paths;

/// <summary>
/// One open root directory: the fd that every lookup's <c>openat2</c> resolves beneath, and the device and inode it
/// was when opened. Reference counted, because a root swap (<see cref="ServedRoot"/>) replaces it while helpers may
/// be inside an open beneath it: the fd is closed by whoever lets go last, so no open ever runs on a closed fd, or on
/// its number reused by another open, which would resolve the request's path beneath an unrelated folder.
/// </summary>
internal sealed class RootDirectory
{
    private readonly uint _deviceMajor;
    private readonly uint _deviceMinor;
    private readonly ulong _inode;
    private int _references = 1;

    private RootDirectory(int fd, in Statx stat)
    {
        Fd = fd;
        _deviceMajor = stat.stx_dev_major;
        _deviceMinor = stat.stx_dev_minor;
        _inode = stat.stx_ino;
    }

    /// <summary>The directory's fd; valid while the caller holds a reference.</summary>
    public int Fd { get; }

    /// <summary>
    /// Opens the directory <paramref name="path"/> names now (following symlinks), held once for the caller; the
    /// device and inode come from the open fd, so they describe what was opened even if the path moved meanwhile.
    /// </summary>
    public static PosixResult Open(string path, out RootDirectory? root)
    {
        root = null;
        var opened = FileInterop.OpenDirectory(path);
        if (!opened.IsSuccess)
        {
            return opened;
        }
        var stat = FileInterop.StatFd(opened.IntValue, out var statx);
        if (!stat.IsSuccess)
        {
            PosixIO.Close(opened.IntValue);
            return stat;
        }
        root = new RootDirectory(opened.IntValue, statx);
        return opened;
    }

    /// <summary>Whether <paramref name="stat"/> describes this directory: the same inode on the same device.</summary>
    public bool Is(in Statx stat)
        => stat.stx_ino == _inode && stat.stx_dev_major == _deviceMajor && stat.stx_dev_minor == _deviceMinor;

    /// <summary>Whether <paramref name="other"/> is the same directory, opened again.</summary>
    public bool IsSameAs(RootDirectory other)
        => other._inode == _inode && other._deviceMajor == _deviceMajor && other._deviceMinor == _deviceMinor;

    /// <summary>One more reference, unless the last one is gone already (the fd is closed or closing).</summary>
    public bool TryAcquire() => ReferenceCount.TryAcquire(ref _references);

    /// <summary>Drops a reference; the last one closes the fd.</summary>
    public void Release()
    {
        if (Interlocked.Decrement(ref _references) == 0)
        {
            PosixIO.Close(Fd);
        }
    }
}
