using System.Runtime.InteropServices;
using EpollTransport.Posix;

namespace EpollTransport.Interop;

/// <summary>
/// The native array one reactor's <c>epoll_wait</c> fills, laid out per architecture
/// (<see cref="EpollInterop.EventSize"/>), and the reads of one event's flags and data from it. Owned and used by the
/// reactor thread alone.
/// </summary>
internal sealed unsafe class EpollEventBuffer : IDisposable
{
    private readonly byte* _events;

    public EpollEventBuffer(int capacity)
    {
        Capacity = capacity;
        _events = (byte*)NativeMemory.Alloc((nuint)(capacity * EpollInterop.EventSize));
    }

    /// <summary>The most events one wait returns.</summary>
    public int Capacity { get; }

    /// <summary><c>epoll_wait</c>: the number of events now in the buffer.</summary>
    public PosixResult Wait(int epfd, int timeoutMs) => EpollInterop.Wait(epfd, _events, Capacity, timeoutMs);

    public uint EventsAt(int index) => EpollInterop.EventsAt(_events, index);

    public ulong DataAt(int index) => EpollInterop.DataAt(_events, index);

    public void Dispose() => NativeMemory.Free(_events);
}
