using System.Runtime.InteropServices;

namespace EpollTransport.Reactor;

/// <summary>
/// The counters of the sends that flushing threads make for the connections of one reactor. Unlike
/// <see cref="ReactorCounters"/>, any thread writes them, so they are atomic, and they sit on a line of their own,
/// apart from the reactor's counters and from <see cref="ReactorWakeup"/>'s state word.
/// </summary>
internal sealed class WriteThroughCounters
{
    private Line _line;

    /// <summary>sendmsg calls made by flushing threads.</summary>
    public long Sends => Volatile.Read(ref _line.Sends);

    /// <summary>Buffer segments those calls gathered.</summary>
    public long Segments => Volatile.Read(ref _line.Segments);

    /// <summary>Those calls that returned EAGAIN.</summary>
    public long WouldBlock => Volatile.Read(ref _line.WouldBlock);

    /// <summary>Times a flushing thread handed the write side to the reactor (EAGAIN, a short write, an error, the end).</summary>
    public long HandOffs => Volatile.Read(ref _line.HandOffs);

    public void Count(int segments)
    {
        Interlocked.Increment(ref _line.Sends);
        Interlocked.Add(ref _line.Segments, segments);
    }

    public void CountWouldBlock() => Interlocked.Increment(ref _line.WouldBlock);

    public void CountHandOff() => Interlocked.Increment(ref _line.HandOffs);

    /// <summary>Padded to 128 bytes on each side (the adjacent-line prefetcher of x86-64 moves lines in pairs).</summary>
    [StructLayout(LayoutKind.Explicit, Size = 3 * 128)]
    private struct Line
    {
        [FieldOffset(128)]
        public long Sends;

        [FieldOffset(136)]
        public long Segments;

        [FieldOffset(144)]
        public long WouldBlock;

        [FieldOffset(152)]
        public long HandOffs;
    }
}
