using System.Runtime.InteropServices;
using EpollTransport.Posix;
using Microsoft.Win32.SafeHandles;

namespace EpollTransport.Interop;

/// <summary>
/// The calls of the zero-copy send path: <c>sendfile</c> from a file to a connection's socket, <c>cachestat</c> to know
/// whether a range is in the page cache (so that a <c>sendfile</c> on a reactor never waits for the disk), and
/// <c>readahead</c>, which a thread that may block runs to bring a range in. The file's <see cref="SafeFileHandle"/> is
/// referenced for each call by the marshaller, so a file closed meanwhile is never a reused fd number.
/// </summary>
internal static unsafe partial class FileRegionInterop
{
    /// <summary>cachestat(2)'s number: the same in the generic table (arm64) and on x86-64.</summary>
    private const long SYS_cachestat = 451;

    /// <summary>
    /// sendfile(2) of up to <paramref name="count"/> bytes of <paramref name="file"/> from <paramref name="offset"/>
    /// to the socket <paramref name="socket"/> (non-blocking: EAGAIN when its buffer is full, a short count when it
    /// filled up). 0 bytes from a non-zero count: the file ends before the range does. Retried on EINTR.
    /// </summary>
    public static PosixResult SendFile(int socket, SafeFileHandle file, long offset, long count)
    {
        PosixResult result;
        do
        {
            var position = offset;
            result = PosixResult.FromReturn(sendfile(socket, file, &position, (nuint)count));
        }
        while (result.Interrupted);
        return result;
    }

    /// <summary>
    /// Whether every page of <paramref name="length"/> bytes of <paramref name="file"/> from <paramref name="offset"/>
    /// is in the page cache: cachestat(2), Linux 6.5 and later. ENOSYS on older kernels (and EPERM from some
    /// seccomp filters): the caller must then treat the range as not known to be resident.
    /// </summary>
    public static PosixResult IsResident(SafeFileHandle file, long offset, long length, out bool resident)
    {
        resident = false;
        var range = new CacheStatRange { Offset = (ulong)offset, Length = (ulong)length };
        CacheStat stat;
        var added = false;
        try
        {
            file.DangerousAddRef(ref added);
            var result = PosixResult.FromReturn(syscall(SYS_cachestat, file.DangerousGetHandle(), (nint)(&range), (nint)(&stat), 0));
            if (result.IsSuccess)
            {
                var pageSize = Environment.SystemPageSize;
                var pages = (ulong)((offset + length + pageSize - 1) / pageSize - offset / pageSize);
                resident = stat.Cache >= pages;
            }
            return result;
        }
        finally
        {
            if (added)
            {
                file.DangerousRelease();
            }
        }
    }

    /// <summary>readahead(2): reads the range into the page cache and returns when it is read. May block: never on a reactor.</summary>
    public static PosixResult ReadAhead(SafeFileHandle file, long offset, long length)
        => PosixResult.FromReturn(readahead(file, offset, (nuint)length));

    [StructLayout(LayoutKind.Sequential)]
    private struct CacheStatRange
    {
        public ulong Offset;
        public ulong Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct CacheStat
    {
        public ulong Cache;
        public ulong Dirty;
        public ulong Writeback;
        public ulong Evicted;
        public ulong RecentlyEvicted;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint sendfile(int out_fd, SafeFileHandle in_fd, long* offset, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint readahead(SafeFileHandle fd, long offset, nuint count);

    // syscall(2) is variadic; its integer arguments pass in the same registers as a fixed signature's on x86-64 and
    // arm64 Linux.
    [LibraryImport("libc", SetLastError = true)]
    private static partial long syscall(long number, nint fd, nint range, nint stat, nint flags);
}
