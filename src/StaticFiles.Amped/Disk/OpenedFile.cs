using StaticFiles.Amped.Interop;

namespace StaticFiles.Amped.Disk;

/// <summary>An open file (or folder) and its <c>statx</c>, or the errno of the failed open.</summary>
internal readonly record struct OpenedFile(int Fd, int Errno, Statx Stat)
{
    public bool IsOpen => Fd >= 0;

    public bool IsRegularFile => IsOpen && (Stat.stx_mode & FileInterop.S_IFMT) == FileInterop.S_IFREG;

    public bool IsDirectory => IsOpen && (Stat.stx_mode & FileInterop.S_IFMT) == FileInterop.S_IFDIR;

    public static OpenedFile Failed(int errno) => new(-1, errno, default);
}
