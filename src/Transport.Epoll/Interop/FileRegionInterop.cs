using System.Runtime.InteropServices;
using EpollTransport.Posix;
using Microsoft.Win32.SafeHandles;

namespace EpollTransport.Interop;

/// <summary>
/// The calls of the zero-copy send path on a file's <see cref="SafeFileHandle"/>: <c>sendfile</c> to a connection's
/// socket, and <see cref="PosixIO.PagesReady"/> and <see cref="PosixIO.ReadAhead"/> with the handle referenced for the
/// call, so that a file closed meanwhile is never a reused fd number.
/// </summary>
internal static unsafe partial class FileRegionInterop
{
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

    /// <summary><see cref="PosixIO.PagesReady"/> of a range of <paramref name="file"/>.</summary>
    public static PosixResult IsResident(SafeFileHandle file, long offset, long length, out bool resident)
    {
        var isResident = false;
        var result = WithFd(file, fd => PosixIO.PagesReady(fd, offset, length, out isResident));
        resident = isResident;
        return result;
    }

    /// <summary><see cref="PosixIO.ReadAhead"/> of a range of <paramref name="file"/>. May block: never on a reactor.</summary>
    public static PosixResult ReadAhead(SafeFileHandle file, long offset, long length)
        => WithFd(file, fd => PosixIO.ReadAhead(fd, offset, length));

    /// <summary>Runs a call on the handle's fd with the handle referenced, so a concurrent close cannot free the number.</summary>
    private static PosixResult WithFd(SafeFileHandle file, Func<int, PosixResult> call)
    {
        var added = false;
        try
        {
            file.DangerousAddRef(ref added);
            return call((int)file.DangerousGetHandle());
        }
        finally
        {
            if (added)
            {
                file.DangerousRelease();
            }
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint sendfile(int out_fd, SafeFileHandle in_fd, long* offset, nuint count);
}
