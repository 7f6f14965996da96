using System.Buffers;
using System.Net;
using System.Net.Sockets;
using EpollTransport.Posix;
using EpollTransport.Tests.Transport;

namespace EpollTransport.Tests.Posix;

public class IOVectorBatchTests
{
    [Fact]
    public async Task AManySegmentSequenceArrivesByteExact()
    {
        // More non-empty segments than one sendmsg gathers, of mixed sizes (one byte to several pages, some larger
        // than a socket buffer takes at once), and empty ones, which take no iovec.
        var sizes = Enumerable.Range(0, IOVectorBatch.MaxVectors + 40)
            .Select(i => i % 17 == 5 ? 0 : (i % 5) switch { 0 => 1, 1 => 7, 2 => 4096, 3 => 333, _ => 70_000 })
            .ToArray();
        var sequence = Sequence(sizes, out var expected);
        Assert.True(sizes.Count(s => s > 0) > IOVectorBatch.MaxVectors);

        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        using var sender = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await sender.ConnectAsync(listener.LocalEndPoint!);
        using var receiver = await listener.AcceptAsync();
        // Blocking, so that each sendmsg waits for room rather than answering EAGAIN; the timeout turns a reader
        // that stopped into a failed send instead of a hung test.
        sender.Blocking = true;
        sender.SendTimeout = (int)WaitLimit.TotalMilliseconds;
        var fd = (int)sender.Handle;

        var received = TransportHarness.ReceiveToEndAsync(receiver, expected.Length, CancellationToken.None);
        var sends = new List<int>();
        while (!sequence.IsEmpty)
        {
            var result = IOVectorBatch.Send(fd, sequence, out var segments);
            Assert.True(result.IsSuccess, result.ToString());
            Assert.InRange(segments, 1, IOVectorBatch.MaxVectors);
            sends.Add(segments);
            sequence = sequence.Slice(result.Value);
        }
        sender.Shutdown(SocketShutdown.Send);

        Assert.Equal(expected, await received.WaitAsync(WaitLimit));
        Assert.Equal(IOVectorBatch.MaxVectors, sends[0]);
        Assert.True(sends.Count > 1);
    }

    /// <summary>Segments of these sizes, each filled with its own bytes, and the whole stream they make.</summary>
    private static ReadOnlySequence<byte> Sequence(int[] sizes, out byte[] expected)
    {
        var stream = new List<byte>();
        Segment? first = null;
        Segment? last = null;
        for (var i = 0; i < sizes.Length; i++)
        {
            var bytes = new byte[sizes[i]];
            for (var j = 0; j < bytes.Length; j++)
            {
                bytes[j] = (byte)((i * 31) + j);
            }
            stream.AddRange(bytes);
            var segment = new Segment(bytes, last);
            first ??= segment;
            last = segment;
        }
        expected = [.. stream];
        return new ReadOnlySequence<byte>(first!, 0, last!, last!.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(byte[] bytes, Segment? previous)
        {
            Memory = bytes;
            if (previous is not null)
            {
                RunningIndex = previous.RunningIndex + previous.Memory.Length;
                previous.Next = this;
            }
        }
    }
}
