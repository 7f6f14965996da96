namespace WebApp;

internal static partial class SampleLog
{
    [LoggerMessage(1, LogLevel.Information, "Transport: {Transport}; inline scheduling: {Inline}; static files: --static {StaticMode}, served by {Middleware} from {Root}.")]
    public static partial void Starting(ILogger logger, string transport, string inline, string staticMode, string middleware, string root);

    [LoggerMessage(2, LogLevel.Information, "Stopping: serving on for {Seconds} s with \"Connection: close\" on every HTTP/1.x response (--drain) before Kestrel stops.")]
    public static partial void Draining(ILogger logger, double seconds);
}
