using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using EpollTransport.Posix;

namespace EpollTransport.Interop;

/// <summary>epoll(7) and eventfd(2).</summary>
internal static unsafe partial class EpollInterop
{
    public const uint EPOLLIN = 0x001;
    public const uint EPOLLOUT = 0x004;
    public const uint EPOLLERR = 0x008;
    public const uint EPOLLHUP = 0x010;
    public const uint EPOLLRDHUP = 0x2000;
    public const uint EPOLLEXCLUSIVE = 1u << 28;
    public const uint EPOLLET = 1u << 31;

    public const int EPOLL_CTL_ADD = 1;
    public const int EPOLL_CTL_DEL = 2;
    public const int EPOLL_CLOEXEC = 0x80000;

    public const int EFD_NONBLOCK = 0x800;
    public const int EFD_CLOEXEC = 0x80000;

    /// <summary>
    /// The kernel's struct epoll_event is packed (12 bytes) on x86-64 and naturally aligned (16 bytes, data at
    /// offset 8) on arm64 and every other 64-bit architecture.
    /// </summary>
    public static readonly bool IsEventPacked = RuntimeInformation.ProcessArchitecture == Architecture.X64;

    public static int EventSize => IsEventPacked ? sizeof(EpollEventPacked) : sizeof(EpollEventAligned);

    public static PosixResult Create() => PosixResult.FromReturn(epoll_create1(EPOLL_CLOEXEC));

    public static PosixResult Add(int epfd, int fd, uint events, ulong data)
    {
        int ret;
        if (IsEventPacked)
        {
            var ev = new EpollEventPacked { Events = events, Data = data };
            ret = epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
        }
        else
        {
            var ev = new EpollEventAligned { Events = events, Data = data };
            ret = epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
        }
        return PosixResult.FromReturn(ret);
    }

    /// <summary>Removes <paramref name="fd"/> from the epoll set (needed only where the fd stays open, shared with other sets).</summary>
    public static PosixResult Delete(int epfd, int fd) => PosixResult.FromReturn(epoll_ctl(epfd, EPOLL_CTL_DEL, fd, null));

    /// <summary>
    /// Waits for events into <paramref name="buffer"/> (<see cref="EventSize"/> bytes per event). A signal ends the
    /// wait early with no events, as the timeout would: epoll_wait is never restarted, and waiting again with the same
    /// timeout would run the next timer late, so the caller's next turn computes the timeout afresh.
    /// </summary>
    public static PosixResult Wait(int epfd, byte* buffer, int maxEvents, int timeoutMs)
    {
        var result = PosixResult.FromReturn(epoll_wait(epfd, buffer, maxEvents, timeoutMs));
        return result.Interrupted ? PosixResult.FromReturn(0) : result;
    }

    public static uint EventsAt(byte* buffer, int index)
        => *(uint*)(buffer + (index * EventSize));

    public static ulong DataAt(byte* buffer, int index)
        => IsEventPacked
            ? Unsafe.ReadUnaligned<ulong>(buffer + (index * sizeof(EpollEventPacked)) + sizeof(uint))
            : *(ulong*)(buffer + (index * sizeof(EpollEventAligned)) + sizeof(ulong));

    public static PosixResult CreateEventFd() => PosixResult.FromReturn(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));

    /// <summary>Adds 1 to an eventfd's counter; EAGAIN means it is saturated, and a wake-up is pending anyway.</summary>
    public static PosixResult SignalEventFd(int fd)
    {
        ulong one = 1;
        return SocketInterop.Write(fd, (byte*)&one, sizeof(ulong));
    }

    /// <summary>Reads an eventfd's counter back to 0.</summary>
    public static PosixResult DrainEventFd(int fd)
    {
        ulong value;
        return SocketInterop.Read(fd, (byte*)&value, sizeof(ulong));
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int epoll_create1(int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int epoll_ctl(int epfd, int op, int fd, void* ev);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int epoll_wait(int epfd, void* events, int maxevents, int timeout);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int eventfd(uint initval, int flags);

    [StructLayout(LayoutKind.Sequential, Pack = 1)]
    private struct EpollEventPacked
    {
        public uint Events;
        public ulong Data;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct EpollEventAligned
    {
        public uint Events;
        public ulong Data;
    }
}
