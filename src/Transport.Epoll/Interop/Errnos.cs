using System.Net.Sockets;

namespace EpollTransport.Interop;

/// <summary>Linux errno values used by the transport (identical on x86-64 and arm64).</summary>
internal static class Errnos
{
    public const int EPERM = 1;
    public const int EINTR = 4;
    public const int EBADF = 9;
    public const int EAGAIN = 11;
    public const int ENOMEM = 12;
    public const int EACCES = 13;
    public const int EINVAL = 22;
    public const int ENFILE = 23;
    public const int EMFILE = 24;
    public const int ENOSPC = 28;
    public const int EPIPE = 32;
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
    /// accept4 errors that concern one pending connection, not the listener: the listener accepts the next one
    /// at once.
    /// </summary>
    public static bool IsTransientAcceptError(int errno)
        => errno is ECONNABORTED or EPROTO or EINTR or EPERM or ENETDOWN or ETIMEDOUT or EHOSTUNREACH or ENETUNREACH;

    /// <summary>
    /// accept4 errors that say the process or the kernel is out of a resource: retrying at once would spin, so the
    /// listener waits a little and leaves the connections in the backlog.
    /// </summary>
    public static bool IsResourceExhausted(int errno) => errno is EMFILE or ENFILE or ENOBUFS or ENOMEM;

    public static string Describe(int errno) => $"{System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})";

    public static SocketError ToSocketError(int errno) => errno switch
    {
        EADDRINUSE => SocketError.AddressAlreadyInUse,
        EADDRNOTAVAIL => SocketError.AddressNotAvailable,
        EACCES or EPERM => SocketError.AccessDenied,
        ECONNRESET => SocketError.ConnectionReset,
        EPIPE => SocketError.Shutdown,
        ECONNABORTED => SocketError.ConnectionAborted,
        ETIMEDOUT => SocketError.TimedOut,
        EHOSTUNREACH => SocketError.HostUnreachable,
        ENETUNREACH => SocketError.NetworkUnreachable,
        ENETDOWN => SocketError.NetworkDown,
        EMFILE or ENFILE => SocketError.TooManyOpenSockets,
        ENOBUFS or ENOMEM => SocketError.NoBufferSpaceAvailable,
        EINVAL => SocketError.InvalidArgument,
        EAGAIN => SocketError.WouldBlock,
        EINTR => SocketError.Interrupted,
        EOPNOTSUPP => SocketError.OperationNotSupported,
        ENOTSOCK => SocketError.NotSocket,
        EBADF => SocketError.OperationAborted,
        _ => SocketError.SocketError,
    };

    public static SocketException ToSocketException(int errno) => new(ToSocketErrorCode(errno));

    private static int ToSocketErrorCode(int errno) => (int)ToSocketError(errno);
}
