namespace EpollTransport.Reactor;

/// <summary>
/// Maps epoll tokens to handlers. A token is (generation &lt;&lt; 32 | slot): the kernel reuses fd numbers as soon
/// as they are closed, so an event is never looked up by fd, and a stale token (a slot reused since the event was
/// queued) resolves to nothing. Generations start at 1, so token 0 never names a handler (the wake-up uses it).
/// Used on the reactor thread only.
/// </summary>
internal sealed class HandlerTable
{
    private IEpollHandler?[] _handlers = new IEpollHandler?[64];
    private uint[] _generations = new uint[64];
    private int[] _free = new int[64];
    private int _freeCount;
    private int _used;

    public int Count { get; private set; }

    public ulong Add(IEpollHandler handler)
    {
        int slot;
        if (_freeCount > 0)
        {
            slot = _free[--_freeCount];
        }
        else
        {
            if (_used == _handlers.Length)
            {
                Array.Resize(ref _handlers, _handlers.Length * 2);
                Array.Resize(ref _generations, _generations.Length * 2);
            }
            slot = _used++;
        }

        var generation = _generations[slot] + 1;
        if (generation == 0)
        {
            generation = 1;
        }
        _generations[slot] = generation;
        _handlers[slot] = handler;
        Count++;
        var token = ((ulong)generation << 32) | (uint)slot;
        handler.Token = token;
        return token;
    }

    public IEpollHandler? Find(ulong token)
    {
        var slot = (uint)token;
        if (slot >= (uint)_used || _generations[slot] != (uint)(token >> 32))
        {
            return null;
        }
        return _handlers[slot];
    }

    public void Remove(ulong token)
    {
        var slot = (int)(uint)token;
        if ((uint)slot >= (uint)_used || _generations[slot] != (uint)(token >> 32) || _handlers[slot] is null)
        {
            return;
        }
        _handlers[slot] = null;
        if (_freeCount == _free.Length)
        {
            Array.Resize(ref _free, _free.Length * 2);
        }
        _free[_freeCount++] = slot;
        Count--;
    }

    /// <summary>Every registered handler, for shutdown.</summary>
    public List<IEpollHandler> Snapshot()
    {
        var list = new List<IEpollHandler>(Count);
        for (int i = 0; i < _used; i++)
        {
            if (_handlers[i] is { } handler)
            {
                list.Add(handler);
            }
        }
        return list;
    }
}
