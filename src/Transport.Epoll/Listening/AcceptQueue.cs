using System.Collections.Concurrent;
using System.Threading.Channels;
using EpollTransport.Connections;

namespace EpollTransport.Listening;

/// <summary>
/// Accepted connections on their way from the reactors to Kestrel's accept loop. Bounded: a listening socket
/// checks <see cref="HasRoom"/> before each accept4 and, when the queue is full, parks itself here and leaves new
/// connections in the kernel backlog until Kestrel takes one.
/// </summary>
internal sealed class AcceptQueue
{
    private readonly Channel<EpollConnection> _channel = Channel.CreateUnbounded<EpollConnection>(
        new UnboundedChannelOptions { SingleReader = true, SingleWriter = false });
    private readonly ConcurrentQueue<ListenSocket> _parked = new();
    private readonly int _capacity;
    private int _count;

    public AcceptQueue(int capacity) => _capacity = capacity;

    public bool HasRoom => Volatile.Read(ref _count) < _capacity;

    /// <summary>Reactor thread. Returns false once the listener is unbound; the caller then closes the connection.</summary>
    public bool TryAdd(EpollConnection connection)
    {
        Interlocked.Increment(ref _count);
        if (_channel.Writer.TryWrite(connection))
        {
            return true;
        }
        Interlocked.Decrement(ref _count);
        return false;
    }

    /// <summary>
    /// Parks a listening socket until there is room. Publish, then re-check (the taker decrements, then looks for
    /// parked sockets): one of the two sides always sees the other, so no socket stays parked with room free.
    /// </summary>
    public void Park(ListenSocket socket)
    {
        _parked.Enqueue(socket);
        if (HasRoom)
        {
            ResumeParked();
        }
    }

    /// <summary>The next connection, or null once the queue is completed and empty.</summary>
    public async ValueTask<EpollConnection?> TakeAsync(CancellationToken cancellationToken)
    {
        var reader = _channel.Reader;
        while (true)
        {
            if (reader.TryRead(out var connection))
            {
                Interlocked.Decrement(ref _count);
                if (!_parked.IsEmpty)
                {
                    ResumeParked();
                }
                return connection;
            }
            if (!await reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                return null;
            }
        }
    }

    /// <summary>
    /// Takes no more connections; those already queued are still handed out by <see cref="TakeAsync"/>, which returns
    /// null once they are gone.
    /// </summary>
    public void CompleteAdding() => _channel.Writer.TryComplete();

    /// <summary>Takes no more connections and hands out none; returns those still queued, for the caller to close.</summary>
    public List<EpollConnection> Complete()
    {
        _channel.Writer.TryComplete();
        var left = new List<EpollConnection>();
        while (_channel.Reader.TryRead(out var connection))
        {
            Interlocked.Decrement(ref _count);
            left.Add(connection);
        }
        return left;
    }

    private void ResumeParked()
    {
        while (_parked.TryDequeue(out var socket))
        {
            socket.Resume();
        }
    }
}
