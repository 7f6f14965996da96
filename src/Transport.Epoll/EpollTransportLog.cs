using EpollTransport.Connections;
using Microsoft.Extensions.Logging;

namespace EpollTransport;

/// <summary>The transport's log messages. Event ids are stable: dashboards and filters may rely on them.</summary>
internal static partial class EpollTransportLog
{
    [LoggerMessage(1, LogLevel.Debug, "Listening on {EndPoint} with {ListenerCount} listening socket(s), accepted on by {AcceptingReactors} reactor(s).", EventName = "Bound")]
    public static partial void Bound(ILogger logger, System.Net.EndPoint endPoint, int listenerCount, int acceptingReactors);

    [LoggerMessage(2, LogLevel.Error, "accept4 failed on {EndPoint}: {Error}.", EventName = "AcceptError")]
    public static partial void AcceptError(ILogger logger, System.Net.EndPoint endPoint, string error);

    [LoggerMessage(3, LogLevel.Warning, "Out of file descriptors or memory while accepting on {EndPoint} ({Reason}); accepting pauses, retries every {DelayMs} ms and leaves new connections in the backlog.", EventName = "AcceptFileDescriptorsExhausted")]
    public static partial void AcceptFileDescriptorsExhausted(ILogger logger, System.Net.EndPoint endPoint, string reason, int delayMs);

    // The connection's events take the connection and check IsEnabled themselves: its id is made on first use, and
    // most connections are never named otherwise, so none is made while these levels are off.

    [LoggerMessage(4, LogLevel.Debug, "Connection id \"{ConnectionId}\" reset by the peer.", EventName = "ConnectionReset", SkipEnabledCheck = true)]
    private static partial void ConnectionResetCore(ILogger logger, string connectionId);

    public static void ConnectionReset(ILogger logger, EpollConnection connection)
    {
        if (logger.IsEnabled(LogLevel.Debug))
        {
            ConnectionResetCore(logger, connection.ConnectionId);
        }
    }

    [LoggerMessage(5, LogLevel.Debug, "Connection id \"{ConnectionId}\" aborted: {Reason}", EventName = "ConnectionAborted", SkipEnabledCheck = true)]
    private static partial void ConnectionAbortedCore(ILogger logger, string connectionId, string reason);

    public static void ConnectionAborted(ILogger logger, EpollConnection connection, string reason)
    {
        if (logger.IsEnabled(LogLevel.Debug))
        {
            ConnectionAbortedCore(logger, connection.ConnectionId, reason);
        }
    }

    [LoggerMessage(6, LogLevel.Debug, "Connection id \"{ConnectionId}\" received FIN.", EventName = "ConnectionReadFin", SkipEnabledCheck = true)]
    private static partial void ConnectionReadFinCore(ILogger logger, string connectionId);

    public static void ConnectionReadFin(ILogger logger, EpollConnection connection)
    {
        if (logger.IsEnabled(LogLevel.Debug))
        {
            ConnectionReadFinCore(logger, connection.ConnectionId);
        }
    }

    [LoggerMessage(7, LogLevel.Debug, "Connection id \"{ConnectionId}\" sending FIN because: \"{Reason}\"", EventName = "ConnectionWriteFin", SkipEnabledCheck = true)]
    private static partial void ConnectionWriteFinCore(ILogger logger, string connectionId, string reason);

    public static void ConnectionWriteFin(ILogger logger, EpollConnection connection, string reason)
    {
        if (logger.IsEnabled(LogLevel.Debug))
        {
            ConnectionWriteFinCore(logger, connection.ConnectionId, reason);
        }
    }

    [LoggerMessage(8, LogLevel.Debug, "Connection id \"{ConnectionId}\" failed: {Error}", EventName = "ConnectionError", SkipEnabledCheck = true)]
    private static partial void ConnectionErrorCore(ILogger logger, string connectionId, string error, Exception exception);

    /// <summary>An error that ends the connection, with the exception attached, as Sockets logs it.</summary>
    public static void ConnectionError(ILogger logger, EpollConnection connection, Exception error)
    {
        if (logger.IsEnabled(LogLevel.Debug))
        {
            ConnectionErrorCore(logger, connection.ConnectionId, error.Message, error);
        }
    }

    [LoggerMessage(9, LogLevel.Critical, "Reactor {ReactorId} stopped after an unexpected error.", EventName = "ReactorFailed")]
    public static partial void ReactorFailed(ILogger logger, int reactorId, Exception exception);

    [LoggerMessage(10, LogLevel.Error, "Unexpected exception in a handler of reactor {ReactorId}.", EventName = "HandlerFailed")]
    public static partial void HandlerFailed(ILogger logger, int reactorId, Exception exception);

    [LoggerMessage(11, LogLevel.Warning, "The epoll transport needs Linux; {OS} uses Kestrel's Sockets transport instead.", EventName = "NotLinux")]
    public static partial void NotLinux(ILogger logger, string os);

    [LoggerMessage(12, LogLevel.Error, "Registering an accepted connection with reactor {ReactorId} failed: {Error}.", EventName = "RegisterError")]
    public static partial void RegisterError(ILogger logger, int reactorId, string error);

    [LoggerMessage(13, LogLevel.Error, "SendFileAsync of {Path}: {Missing} of {Length} bytes of a file region did not reach the transport (buffered on the way); the connection is aborted so that no scratch byte is sent.", EventName = "RegionLost")]
    public static partial void RegionLost(ILogger logger, string path, long missing, long length);
}
