using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using EpollTransport.Posix;

namespace EpollTransport.Interop;

/// <summary>
/// socket(7), tcp(7) and unix(7) calls to set up and tear down sockets, and the fd calls that go with them; the
/// reads, writes and close of the hot path are <see cref="PosixIO"/>.
/// </summary>
internal static unsafe partial class SocketInterop
{
    public const int AF_UNIX = 1;
    public const int AF_INET = 2;
    public const int AF_INET6 = 10;

    public const int SOCK_STREAM = 1;
    public const int SOCK_NONBLOCK = 0x800;
    public const int SOCK_CLOEXEC = 0x80000;

    public const int SOL_SOCKET = 1;
    public const int SO_REUSEADDR = 2;
    public const int SO_LINGER = 13;
    public const int SO_REUSEPORT = 15;
    public const int SO_DOMAIN = 39;
    public const int SO_TYPE = 3;
    public const int IPPROTO_TCP = 6;
    public const int TCP_NODELAY = 1;
    public const int TCP_INQ = 36;
    public const int IPPROTO_IPV6 = 41;
    public const int IPV6_V6ONLY = 26;

    public const int SHUT_RDWR = 2;

    private const int F_GETFL = 3;
    private const int F_SETFL = 4;
    private const int O_NONBLOCK = 0x800;

    /// <summary>Big enough for sockaddr_in6 and sockaddr_un (sockaddr_storage is 128).</summary>
    public const int SockAddrCapacity = 128;

    public static PosixResult Socket(int domain) => PosixResult.FromReturn(socket(domain, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));

    public static PosixResult Bind(int fd, EndPoint endPoint)
    {
        var address = endPoint.Serialize();
        fixed (byte* p = address.Buffer.Span)
        {
            return PosixResult.FromReturn(bind(fd, p, (uint)address.Size));
        }
    }

    public static PosixResult Listen(int fd, int backlog) => PosixResult.FromReturn(listen(fd, backlog));

    public static PosixResult Accept(int fd)
    {
        PosixResult result;
        do
        {
            result = PosixResult.FromReturn(accept4(fd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC));
        }
        while (result.Interrupted);
        return result;
    }

    public static PosixResult Shutdown(int fd, int how) => PosixResult.FromReturn(shutdown(fd, how));

    public static PosixResult SetOption(int fd, int level, int name, int value)
        => PosixResult.FromReturn(setsockopt(fd, level, name, &value, sizeof(int)));

    public static PosixResult GetOption(int fd, int level, int name, out int value)
    {
        int v = 0;
        uint len = sizeof(int);
        var result = PosixResult.FromReturn(getsockopt(fd, level, name, &v, &len));
        value = v;
        return result;
    }

    /// <summary>SO_LINGER {on, 0}: the next close() sends RST instead of FIN.</summary>
    public static PosixResult SetLingerZero(int fd)
    {
        var linger = stackalloc int[2] { 1, 0 };
        return PosixResult.FromReturn(setsockopt(fd, SOL_SOCKET, SO_LINGER, linger, 2 * sizeof(int)));
    }

    public static PosixResult SetNonBlocking(int fd)
    {
        var flags = PosixResult.FromReturn(fcntl(fd, F_GETFL, 0));
        if (!flags.IsSuccess || (flags.IntValue & O_NONBLOCK) != 0)
        {
            return flags;
        }
        return PosixResult.FromReturn(fcntl(fd, F_SETFL, flags.IntValue | O_NONBLOCK));
    }

    public static EndPoint? GetLocalEndPoint(int fd) => GetEndPoint(fd, peer: false);

    public static EndPoint? GetRemoteEndPoint(int fd) => GetEndPoint(fd, peer: true);

    private static EndPoint? GetEndPoint(int fd, bool peer)
    {
        var buffer = stackalloc byte[SockAddrCapacity];
        uint length = SockAddrCapacity;
        int ret = peer ? getpeername(fd, buffer, &length) : getsockname(fd, buffer, &length);
        if (ret != 0 || length < sizeof(ushort))
        {
            return null;
        }

        var family = *(ushort*)buffer;
        var addressFamily = family switch
        {
            AF_INET => AddressFamily.InterNetwork,
            AF_INET6 => AddressFamily.InterNetworkV6,
            AF_UNIX => AddressFamily.Unix,
            _ => AddressFamily.Unknown,
        };
        if (addressFamily == AddressFamily.Unknown)
        {
            return null;
        }

        var address = new SocketAddress(addressFamily, (int)length);
        new ReadOnlySpan<byte>(buffer, (int)length).CopyTo(address.Buffer.Span);
        return addressFamily == AddressFamily.Unix
            ? UnixEndPointFrom(address)
            : new IPEndPoint(addressFamily == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any, 0).Create(address);
    }

    private static EndPoint UnixEndPointFrom(SocketAddress address)
    {
        // sun_path after the 2-byte family; unnamed (socketpair/accepted) sockets have an empty path.
        var path = address.Buffer.Span[sizeof(ushort)..address.Size];
        var nul = path.IndexOf((byte)0);
        if (nul == 0 && path.Length > 1)
        {
            // Abstract namespace: keep the leading NUL as UnixDomainSocketEndPoint does.
            return new UnixDomainSocketEndPoint("\0" + System.Text.Encoding.UTF8.GetString(path[1..]));
        }
        var text = System.Text.Encoding.UTF8.GetString(nul >= 0 ? path[..nul] : path);
        return text.Length == 0 ? new UnixDomainSocketEndPoint("\0") : new UnixDomainSocketEndPoint(text);
    }

    /// <summary>The soft RLIMIT_NOFILE: fds are numbered below it.</summary>
    public static long GetFileLimit()
    {
        var limit = stackalloc ulong[2];
        const int RLIMIT_NOFILE = 7;
        return getrlimit(RLIMIT_NOFILE, limit) == 0 ? (long)Math.Min(limit[0], long.MaxValue) : long.MaxValue;
    }

    public static PosixResult Read(int fd, byte* buffer, int length) => PosixResult.FromReturn(read(fd, buffer, (nuint)length));

    public static PosixResult Write(int fd, byte* buffer, int length) => PosixResult.FromReturn(write(fd, buffer, (nuint)length));

    [LibraryImport("libc", SetLastError = true)]
    private static partial int socket(int domain, int type, int protocol);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int bind(int fd, byte* addr, uint addrlen);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int listen(int fd, int backlog);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int accept4(int fd, byte* addr, uint* addrlen, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int shutdown(int fd, int how);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setsockopt(int fd, int level, int name, void* value, uint len);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int getsockopt(int fd, int level, int name, void* value, uint* len);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int getsockname(int fd, byte* addr, uint* addrlen);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int getpeername(int fd, byte* addr, uint* addrlen);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fcntl(int fd, int cmd, int arg);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int getrlimit(int resource, ulong* limit);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint read(int fd, byte* buf, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint write(int fd, byte* buf, nuint count);
}
