using System.Buffers;
using System.Runtime.CompilerServices;

namespace EpollTransport.Posix;

/// <summary>
/// A gathering <c>sendmsg</c> of a <see cref="ReadOnlySequence{T}"/>: up to <see cref="MaxVectors"/> non-empty
/// segments pinned and described by iovecs for the one call, and unpinned after it.
/// </summary>
/// <remarks>
/// Stack-only on purpose: the iovecs and the pin handles are inline arrays in this <c>ref struct</c>, which lives in
/// the frame of the send (about 2.5 KB of stack). So any thread may send, with no lock and no scratch to borrow (a
/// flush written through on a thread-pool thread as well as the reactor's end-of-turn send), and a connection holds
/// no scratch between sends: an idle one costs nothing here. A heap batch would cost either a lock or thread
/// affinity (one per reactor) or memory per connection.
/// </remarks>
internal ref struct IOVectorBatch
{
    /// <summary>Segments gathered into one sendmsg.</summary>
    public const int MaxVectors = 64;

    private IOVectors _vectors;
    private Pins _pins;
    private int _count;

    private IOVectorBatch(in ReadOnlySequence<byte> buffer)
    {
        foreach (var segment in buffer)
        {
            if (segment.IsEmpty)
            {
                continue;
            }
            if (_count == MaxVectors)
            {
                break;
            }
            _pins[_count] = segment.Pin();
            unsafe
            {
                _vectors[_count] = new IOVector { Base = _pins[_count].Pointer, Length = (nuint)segment.Length };
            }
            _count++;
        }
    }

    /// <summary>
    /// Sends the first <see cref="MaxVectors"/> non-empty segments of <paramref name="buffer"/> in one <c>sendmsg</c>
    /// (<c>MSG_NOSIGNAL</c>); <paramref name="segments"/> is how many were gathered. Any thread.
    /// </summary>
    public static PosixResult Send(int fd, in ReadOnlySequence<byte> buffer, out int segments)
    {
        var batch = new IOVectorBatch(buffer);
        try
        {
            segments = batch._count;
            return PosixIO.SendMessage(fd, ((ReadOnlySpan<IOVector>)batch._vectors)[..batch._count]);
        }
        finally
        {
            batch.Unpin();
        }
    }

    private void Unpin()
    {
        for (int i = 0; i < _count; i++)
        {
            _pins[i].Dispose();
        }
    }

    [InlineArray(MaxVectors)]
    private struct IOVectors
    {
        private IOVector _first;
    }

    [InlineArray(MaxVectors)]
    private struct Pins
    {
        private MemoryHandle _first;
    }
}
