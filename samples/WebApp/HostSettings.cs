namespace WebApp;

/// <summary>What the user configured through ASP.NET Core's own sources, so the sample's defaults stay out of the way.</summary>
internal static class HostSettings
{
    /// <summary>Whether the arguments or the environment name a content root.</summary>
    public static bool NameContentRoot(string[] hostArgs) =>
        new ConfigurationBuilder()
            .AddEnvironmentVariables("DOTNET_")
            .AddEnvironmentVariables("ASPNETCORE_")
            .AddCommandLine(hostArgs)
            .Build()[HostDefaults.ContentRootKey] is not null;

    /// <summary>Whether any source already says where Kestrel listens.</summary>
    public static bool NameEndpoints(IConfiguration configuration) =>
        NameUrls(configuration) || configuration.GetSection("Kestrel:Endpoints").Exists();

    /// <summary>
    /// Whether any source names URLs or ports (--urls, ASPNETCORE_URLS, ASPNETCORE_HTTP_PORTS, ...): Kestrel ignores
    /// them, with a warning, once the code names listening sockets of its own.
    /// </summary>
    public static bool NameUrls(IConfiguration configuration) =>
        !string.IsNullOrEmpty(configuration[WebHostDefaults.ServerUrlsKey])
        || !string.IsNullOrEmpty(configuration[WebHostDefaults.HttpPortsKey])
        || !string.IsNullOrEmpty(configuration[WebHostDefaults.HttpsPortsKey]);
}
