namespace WebApp;

internal static partial class SampleLog
{
    [LoggerMessage(1, LogLevel.Information, "Transport: {Transport}; inline scheduling: {Inline}; static files: --static {StaticMode}, served by UseStaticFiles from {Root}.")]
    public static partial void Starting(ILogger logger, string transport, string inline, string staticMode, string root);

    [LoggerMessage(2, LogLevel.Information, "--static {StaticMode} is accepted, but the AMPED middleware is not part of this build yet: every --static mode is served by UseStaticFiles.")]
    public static partial void AmpedNotInBuild(ILogger logger, string staticMode);
}
