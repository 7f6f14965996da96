namespace EpollTransport.Reactor;

/// <summary>
/// Something registered with an <see cref="EpollReactor"/>: a listening socket or a connection.
/// Every member is called on the reactor's thread only.
/// </summary>
internal interface IEpollHandler
{
    /// <summary>The registration token (slot and generation); set by the reactor.</summary>
    ulong Token { get; set; }

    /// <summary>Whether the handler is in the ready list now; kept by <see cref="ReadyList"/>.</summary>
    bool IsReady { get; set; }

    /// <summary>Whether the handler is in the reactor's deferred-send list now.</summary>
    bool IsSendQueued { get; set; }

    /// <summary>
    /// Turns one epoll event into the handler's readiness flags. Returns whether the handler now has work to
    /// run (the reactor then puts it on the ready list). Must not do I/O: events are collected first, then
    /// dispatched, so no handler runs before every event of the batch has been seen.
    /// </summary>
    bool OnEvents(uint events);

    /// <summary>
    /// Does the handler's work within its per-turn budget. Returns true when the budget was spent and work
    /// remains (the handler stays on the ready list for the next turn), false when it reached EAGAIN or has
    /// nothing more to do.
    /// </summary>
    bool Run();

    /// <summary>Writes what the handler queued for this turn (one <c>sendmsg</c>).</summary>
    void Send();

    /// <summary>The reactor is stopping with this handler still registered: release the fd now.</summary>
    void OnReactorStopping();
}
