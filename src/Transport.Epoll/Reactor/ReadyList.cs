namespace EpollTransport.Reactor;

/// <summary>
/// A FIFO of handlers with work to do, served round-robin: each turn serves the handlers that were on the list
/// when the turn began, once each; a handler that spent its budget goes to the back. Under edge-triggered
/// notification a handler that is never served again never gets another edge, so a handler leaves the list
/// only on EAGAIN (or when it has nothing more to do), never because it was cut short.
/// </summary>
internal sealed class ReadyList
{
    private IEpollHandler?[] _items = new IEpollHandler?[64];
    private int _head;
    private int _count;

    public int Count => _count;

    public void Add(IEpollHandler handler)
    {
        if (handler.IsReady)
        {
            return;
        }
        handler.IsReady = true;
        if (_count == _items.Length)
        {
            Grow();
        }
        _items[(_head + _count) & (_items.Length - 1)] = handler;
        _count++;
    }

    public IEpollHandler Take()
    {
        var handler = _items[_head]!;
        _items[_head] = null;
        _head = (_head + 1) & (_items.Length - 1);
        _count--;
        handler.IsReady = false;
        return handler;
    }

    private void Grow()
    {
        var items = new IEpollHandler?[_items.Length * 2];
        for (int i = 0; i < _count; i++)
        {
            items[i] = _items[(_head + i) & (_items.Length - 1)];
        }
        _items = items;
        _head = 0;
    }
}
