using System.Buffers;
using System.Runtime.InteropServices;

namespace EpollTransport.Interop;

/// <summary>
/// A gathering <c>sendmsg</c> of a <see cref="ReadOnlySequence{T}"/>: up to <see cref="MaxVectors"/> segments pinned
/// into a native iovec array for the call, and unpinned after it. The arrays are scratch, reused by every send of one
/// reactor thread, which alone may use it.
/// </summary>
internal sealed unsafe class IOVectorBatch : IDisposable
{
    /// <summary>Segments gathered into one sendmsg.</summary>
    public const int MaxVectors = 64;

    private readonly IOVector* _vectors = (IOVector*)NativeMemory.Alloc((nuint)(MaxVectors * sizeof(IOVector)));
    private readonly MemoryHandle[] _pins = new MemoryHandle[MaxVectors];

    /// <summary>
    /// Sends the first <see cref="MaxVectors"/> non-empty segments of <paramref name="buffer"/> in one <c>sendmsg</c>
    /// (<c>MSG_NOSIGNAL</c>); <paramref name="segments"/> is how many were gathered.
    /// </summary>
    public PosixResult Send(int fd, in ReadOnlySequence<byte> buffer, out int segments)
    {
        int count = 0;
        foreach (var segment in buffer)
        {
            if (segment.IsEmpty)
            {
                continue;
            }
            if (count == MaxVectors)
            {
                break;
            }
            _pins[count] = segment.Pin();
            _vectors[count].Base = _pins[count].Pointer;
            _vectors[count].Length = (nuint)segment.Length;
            count++;
        }

        var message = default(MessageHeader);
        message.IOVectors = _vectors;
        message.IOVectorCount = (nuint)count;
        var result = SocketInterop.SendMessage(fd, &message);
        for (int i = 0; i < count; i++)
        {
            _pins[i].Dispose();
        }
        segments = count;
        return result;
    }

    public void Dispose() => NativeMemory.Free(_vectors);
}
