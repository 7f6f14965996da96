using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace WebApp;

/// <summary>
/// Listening sockets the sample does not bind from a URL: those systemd socket activation hands it, and one of its own
/// with <c>SO_REUSEPORT</c> set (<c>--reuse-port</c>). Either way Kestrel gets a file descriptor through
/// <c>ListenHandle</c>, and the transport serves it as a <see cref="FileHandleEndPoint"/>.
/// </summary>
internal static class ListenSockets
{
    /// <summary>The first fd systemd passes (SD_LISTEN_FDS_START); LISTEN_FDS of them follow.</summary>
    private const int FirstInheritedFd = 3;

    /// <summary>SOL_SOCKET and SO_REUSEPORT on Linux: .NET has no named option for SO_REUSEPORT.</summary>
    private const int SolSocket = 1;
    private const int SoReusePort = 15;

    /// <summary>
    /// How many listening sockets systemd socket activation passed to this process: LISTEN_FDS, when LISTEN_PID names
    /// this process (the variables are inherited by children, which must not take the fds for theirs), else 0. The
    /// same test as Kestrel's <c>UseSystemd()</c>, which then listens on fds 3 to 3 + LISTEN_FDS - 1.
    /// </summary>
    public static int InheritedCount()
    {
        var pid = Environment.GetEnvironmentVariable("LISTEN_PID");
        if (pid != Environment.ProcessId.ToString(CultureInfo.InvariantCulture))
        {
            return 0;
        }
        return int.TryParse(Environment.GetEnvironmentVariable("LISTEN_FDS"), NumberStyles.None, CultureInfo.InvariantCulture, out var count)
            && count is > 0 and <= int.MaxValue - FirstInheritedFd
            ? count
            : 0;
    }

    /// <summary>
    /// A TCP socket bound to <paramref name="endPoint"/> with SO_REUSEPORT set and listening, as a file descriptor for
    /// <c>ListenHandle</c>: a second process that does the same shares the port, and the kernel spreads new connections
    /// over both. The fd is handed over: the managed socket lets go of it (the transport closes it when it unbinds).
    /// </summary>
    /// <exception cref="SocketException">The port is taken by a socket without SO_REUSEPORT, or by another user.</exception>
    public static ulong BindReusePort(IPEndPoint endPoint, int backlog)
    {
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            socket.SetRawSocketOption(SolSocket, SoReusePort, BitConverter.GetBytes(1));
            socket.Bind(endPoint);
            socket.Listen(backlog);
            var fd = (ulong)socket.Handle;
            // From here the transport owns the fd and closes it when it unbinds: the socket object must never close
            // it too (by then the number may name another file).
            socket.SafeHandle.SetHandleAsInvalid();
            return fd;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
