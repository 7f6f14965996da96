using System.Net.Sockets;
using EpollTransport.Posix;

namespace EpollTransport.Interop;

/// <summary>An errno as the <see cref="SocketError"/> Kestrel's Sockets transport would have surfaced.</summary>
internal static class SocketErrors
{
    public static SocketError ToSocketError(int errno) => errno switch
    {
        Errnos.EADDRINUSE => SocketError.AddressAlreadyInUse,
        Errnos.EADDRNOTAVAIL => SocketError.AddressNotAvailable,
        Errnos.EACCES or Errnos.EPERM => SocketError.AccessDenied,
        Errnos.ECONNRESET => SocketError.ConnectionReset,
        Errnos.EPIPE => SocketError.Shutdown,
        Errnos.ECONNABORTED => SocketError.ConnectionAborted,
        Errnos.ETIMEDOUT => SocketError.TimedOut,
        Errnos.EHOSTUNREACH => SocketError.HostUnreachable,
        Errnos.ENETUNREACH => SocketError.NetworkUnreachable,
        Errnos.ENETDOWN => SocketError.NetworkDown,
        Errnos.EMFILE or Errnos.ENFILE => SocketError.TooManyOpenSockets,
        Errnos.ENOBUFS or Errnos.ENOMEM => SocketError.NoBufferSpaceAvailable,
        Errnos.EINVAL => SocketError.InvalidArgument,
        Errnos.EAGAIN => SocketError.WouldBlock,
        Errnos.EINTR => SocketError.Interrupted,
        Errnos.EOPNOTSUPP => SocketError.OperationNotSupported,
        Errnos.ENOTSOCK => SocketError.NotSocket,
        Errnos.EBADF => SocketError.OperationAborted,
        _ => SocketError.SocketError,
    };

    public static SocketException ToSocketException(int errno) => new((int)ToSocketError(errno));
}
