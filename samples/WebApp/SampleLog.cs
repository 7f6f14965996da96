namespace WebApp;

internal static partial class SampleLog
{
    [LoggerMessage(1, LogLevel.Information, "Transport: {Transport}; inline scheduling: {Inline}; static files: --static {StaticMode}, served by {Middleware} from {Root}.")]
    public static partial void Starting(ILogger logger, string transport, string inline, string staticMode, string middleware, string root);
}
