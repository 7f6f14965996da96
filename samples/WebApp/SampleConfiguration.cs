namespace WebApp;

/// <summary>The configuration sections the sample binds its transport's and its static files' options from.</summary>
internal static class SampleConfiguration
{
    /// <summary>EpollTransportOptions, e.g. <c>--EpollTransport:ReadBudgetPerTurn 16384</c>.</summary>
    public const string EpollTransportSection = "EpollTransport";

    /// <summary>AmpedStaticFileOptions, e.g. <c>--AmpedStaticFiles:FileCacheEntries 0</c>; --root and --static set RootPath and Mode.</summary>
    public const string AmpedStaticFilesSection = "AmpedStaticFiles";
}
