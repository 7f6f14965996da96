using System.Globalization;
using System.Runtime.InteropServices;

namespace EpollTransport.Posix;

/// <summary>
/// The Linux errno values both packages meet, with their names, and the classes the callers decide on.
/// asm-generic/errno-base.h and asm-generic/errno.h: x86-64 and arm64 both use the generic numbers.
/// </summary>
internal static class Errnos
{
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int EINTR = 4;
    public const int EIO = 5;
    public const int EBADF = 9;
    public const int EAGAIN = 11;
    public const int ENOMEM = 12;
    public const int EACCES = 13;
    public const int EXDEV = 18;
    public const int ENOTDIR = 20;
    public const int EINVAL = 22;
    public const int ENFILE = 23;
    public const int EMFILE = 24;
    public const int ENOSPC = 28;
    public const int EPIPE = 32;
    public const int ENAMETOOLONG = 36;
    public const int ENOSYS = 38;
    public const int ELOOP = 40;
    public const int EPROTO = 71;
    public const int ENOTSOCK = 88;
    public const int EOPNOTSUPP = 95;
    public const int EADDRINUSE = 98;
    public const int EADDRNOTAVAIL = 99;
    public const int ENETDOWN = 100;
    public const int ENETUNREACH = 101;
    public const int ECONNABORTED = 103;
    public const int ECONNRESET = 104;
    public const int ENOBUFS = 105;
    public const int ETIMEDOUT = 110;
    public const int EHOSTUNREACH = 113;

    /// <summary>Errors that mean the peer is gone (surfaced as a connection reset).</summary>
    public static bool IsConnectionReset(int errno) => errno is ECONNRESET or EPIPE or ETIMEDOUT or EHOSTUNREACH or ENETUNREACH;

    /// <summary>
    /// Errors of a path lookup that say the path names no servable file, and will go on saying so until something
    /// under the root changes: nothing there, a component that is not a directory, a walk that leaves the root or
    /// loops, a name too long, a permission the server lacks. Running out of fds or memory, or an I/O error, is not
    /// one of them.
    /// </summary>
    public static bool NamesNothing(int errno)
        => errno is ENOENT or ENOTDIR or EXDEV or ELOOP or EACCES or ENAMETOOLONG;

    /// <summary>
    /// Errors that say the process or the kernel is out of a resource for a while (fds, memory, socket buffers):
    /// retrying at once would spin, and the same call succeeds once the shortage passes.
    /// </summary>
    public static bool IsResourceExhausted(int errno) => errno is EMFILE or ENFILE or ENOBUFS or ENOMEM;

    /// <summary>
    /// accept4 errors that concern one pending connection, not the listener: the listener accepts the next one
    /// at once.
    /// </summary>
    public static bool IsTransientAcceptError(int errno)
        => errno is ECONNABORTED or EPROTO or EPERM or ENETDOWN or ETIMEDOUT or EHOSTUNREACH or ENETUNREACH;

    /// <summary>The errno's name, message and number: <c>ENOENT: No such file or directory (errno 2)</c>.</summary>
    public static string Describe(int errno)
    {
        var description = $"{Marshal.GetPInvokeErrorMessage(errno)} (errno {errno.ToString(CultureInfo.InvariantCulture)})";
        return Name(errno) is { } name ? $"{name}: {description}" : description;
    }

    /// <summary>The symbolic name of an errno listed here, else null.</summary>
    public static string? Name(int errno) => errno switch
    {
        EPERM => nameof(EPERM),
        ENOENT => nameof(ENOENT),
        EINTR => nameof(EINTR),
        EIO => nameof(EIO),
        EBADF => nameof(EBADF),
        EAGAIN => nameof(EAGAIN),
        ENOMEM => nameof(ENOMEM),
        EACCES => nameof(EACCES),
        EXDEV => nameof(EXDEV),
        ENOTDIR => nameof(ENOTDIR),
        EINVAL => nameof(EINVAL),
        ENFILE => nameof(ENFILE),
        EMFILE => nameof(EMFILE),
        ENOSPC => nameof(ENOSPC),
        EPIPE => nameof(EPIPE),
        ENAMETOOLONG => nameof(ENAMETOOLONG),
        ELOOP => nameof(ELOOP),
        EPROTO => nameof(EPROTO),
        ENOTSOCK => nameof(ENOTSOCK),
        EOPNOTSUPP => nameof(EOPNOTSUPP),
        EADDRINUSE => nameof(EADDRINUSE),
        EADDRNOTAVAIL => nameof(EADDRNOTAVAIL),
        ENETDOWN => nameof(ENETDOWN),
        ENETUNREACH => nameof(ENETUNREACH),
        ECONNABORTED => nameof(ECONNABORTED),
        ECONNRESET => nameof(ECONNRESET),
        ENOBUFS => nameof(ENOBUFS),
        ETIMEDOUT => nameof(ETIMEDOUT),
        EHOSTUNREACH => nameof(EHOSTUNREACH),
        _ => null,
    };
}
