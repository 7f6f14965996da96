using Microsoft.Extensions.Logging;

namespace EpollTransport;

/// <summary>The transport's log messages. Event ids are stable: dashboards and filters may rely on them.</summary>
internal static partial class EpollTransportLog
{
    [LoggerMessage(1, LogLevel.Debug, "Listening on {EndPoint} with {ListenerCount} listening socket(s).", EventName = "Bound")]
    public static partial void Bound(ILogger logger, System.Net.EndPoint endPoint, int listenerCount);

    [LoggerMessage(2, LogLevel.Error, "accept4 failed on {EndPoint}: {Error}.", EventName = "AcceptError")]
    public static partial void AcceptError(ILogger logger, System.Net.EndPoint endPoint, string error);

    [LoggerMessage(3, LogLevel.Warning, "Out of file descriptors or memory while accepting on {EndPoint} ({Reason}); accepting pauses, retries every {DelayMs} ms and leaves new connections in the backlog.", EventName = "AcceptFileDescriptorsExhausted")]
    public static partial void AcceptFileDescriptorsExhausted(ILogger logger, System.Net.EndPoint endPoint, string reason, int delayMs);

    [LoggerMessage(4, LogLevel.Debug, "Connection id \"{ConnectionId}\" reset by the peer.", EventName = "ConnectionReset")]
    public static partial void ConnectionReset(ILogger logger, string connectionId);

    [LoggerMessage(5, LogLevel.Debug, "Connection id \"{ConnectionId}\" aborted: {Reason}", EventName = "ConnectionAborted")]
    public static partial void ConnectionAborted(ILogger logger, string connectionId, string reason);

    [LoggerMessage(6, LogLevel.Debug, "Connection id \"{ConnectionId}\" received FIN.", EventName = "ConnectionReadFin")]
    public static partial void ConnectionReadFin(ILogger logger, string connectionId);

    [LoggerMessage(7, LogLevel.Debug, "Connection id \"{ConnectionId}\" sending FIN because: \"{Reason}\"", EventName = "ConnectionWriteFin")]
    public static partial void ConnectionWriteFin(ILogger logger, string connectionId, string reason);

    [LoggerMessage(8, LogLevel.Debug, "Connection id \"{ConnectionId}\" failed: {Error}", EventName = "ConnectionError")]
    public static partial void ConnectionError(ILogger logger, string connectionId, string error);

    [LoggerMessage(9, LogLevel.Critical, "Reactor {ReactorId} stopped after an unexpected error.", EventName = "ReactorFailed")]
    public static partial void ReactorFailed(ILogger logger, int reactorId, Exception exception);

    [LoggerMessage(10, LogLevel.Error, "Unexpected exception in a handler of reactor {ReactorId}.", EventName = "HandlerFailed")]
    public static partial void HandlerFailed(ILogger logger, int reactorId, Exception exception);

    [LoggerMessage(11, LogLevel.Warning, "The epoll transport needs Linux; {OS} uses Kestrel's Sockets transport instead.", EventName = "NotLinux")]
    public static partial void NotLinux(ILogger logger, string os);

    [LoggerMessage(12, LogLevel.Error, "Registering an accepted connection with reactor {ReactorId} failed: {Error}.", EventName = "RegisterError")]
    public static partial void RegisterError(ILogger logger, int reactorId, string error);
}
