using EpollTransport;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Options;
using StaticFiles.Amped;
using WebApp;

SampleCommandLine commandLine;
try
{
    commandLine = SampleCommandLine.Parse(args);
}
catch (CommandLineException e)
{
    Console.Error.WriteLine($"WebApp: {e.Message}");
    Console.Error.WriteLine("Run with --help for usage.");
    return 2;
}

if (commandLine.ShowHelp)
{
    Console.Out.Write(SampleCommandLine.Usage);
    return 0;
}

var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
{
    Args = commandLine.HostArgs,
    // appsettings.json (quiet logging) is copied next to WebApp.dll. The default content root is the current
    // directory, so `dotnet /path/to/WebApp.dll` started elsewhere would miss it and log every request at
    // Information. A contentRoot the user configured still wins.
    ContentRootPath = HostSettings.NameContentRoot(commandLine.HostArgs) ? null : AppContext.BaseDirectory,
});

// The slim builder leaves HTTPS out; this brings back https:// URLs and Kestrel:Certificates from configuration.
builder.WebHost.UseKestrelHttpsConfiguration();

// Every option under test is reachable without a rebuild: --EpollTransport:ReadBudgetPerTurn 16384 and
// --AmpedStaticFiles:FileCacheEntries 0 reach the options through configuration, like any ASP.NET Core setting.
switch (commandLine.Transport)
{
    case TransportKind.Epoll:
        builder.WebHost.UseEpollTransport(builder.Configuration.GetSection(SampleConfiguration.EpollTransportSection), options =>
        {
            // The flag turns inline scheduling on; without it the configuration's value stands.
            if (commandLine.Inline)
            {
                options.UnsafePreferInlineScheduling = true;
            }
        });
        break;
    case TransportKind.Sockets when commandLine.Inline:
        // CreateSlimBuilder already registers the Sockets transport; this only changes its options.
        builder.WebHost.UseSockets(options => options.UnsafePreferInlineScheduling = true);
        break;
}

builder.Services.AddGrpc();

// Where Kestrel listens: the sockets systemd passed, a socket of the sample's own with SO_REUSEPORT, or URLs.
var inheritedSockets = ListenSockets.InheritedCount();
if (inheritedSockets > 0 || commandLine.ReusePort is not null)
{
    var source = inheritedSockets > 0 ? $"{inheritedSockets} inherited listening socket(s) (LISTEN_FDS)" : "--reuse-port";
    if (inheritedSockets > 0 && commandLine.ReusePort is not null)
    {
        return Fail($"{source} and --reuse-port: choose one.");
    }
    if (HostSettings.NameUrls(builder.Configuration))
    {
        // Kestrel would ignore the URLs with a warning; an error says it before anything listens.
        return Fail($"{source} and URLs or ports (--urls, ASPNETCORE_URLS, ASPNETCORE_HTTP_PORTS): choose one.");
    }
    if (inheritedSockets > 0)
    {
        // Kestrel's own: ListenHandle for fds 3 to 3 + LISTEN_FDS - 1, once it has checked LISTEN_PID.
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.UseSystemd());
    }
    else
    {
        ulong fd;
        try
        {
            fd = ListenSockets.BindReusePort(commandLine.ReusePort!, builder.Configuration.GetValue($"{SampleConfiguration.EpollTransportSection}:Backlog", 512));
        }
        catch (System.Net.Sockets.SocketException e)
        {
            return Fail($"--reuse-port {commandLine.ReusePort}: {e.Message}");
        }
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.ListenHandle(fd));
    }
}
else if (!HostSettings.NameEndpoints(builder.Configuration))
{
    builder.WebHost.UseUrls(SampleCommandLine.DefaultUrl);
}

if (commandLine.Drain > TimeSpan.Zero)
{
    // Its StoppingAsync runs before the web host's StopAsync: Kestrel serves on while it drains.
    builder.Services.AddSingleton(services => new ShutdownDrain(commandLine.Drain,
        commandLine.Transport == TransportKind.Epoll ? services.GetRequiredService<EpollTransportFactory>() : null,
        services.GetRequiredService<ILogger<ShutdownDrain>>()));
    builder.Services.AddHostedService(services => services.GetRequiredService<ShutdownDrain>());
}

var app = builder.Build();

// On epoll the options say it, whether --inline or the EpollTransport section turned it on.
var inline = commandLine.Transport == TransportKind.Epoll
    ? app.Services.GetRequiredService<IOptions<EpollTransportOptions>>().Value.UnsafePreferInlineScheduling
    : commandLine.Inline;
SampleLog.Starting(app.Logger, commandLine.Transport.ToString().ToLowerInvariant(), inline ? "on" : "off",
    commandLine.Static.ToString().ToLowerInvariant(),
    commandLine.Static == StaticMode.Stock ? "UseStaticFiles" : "UseAmpedStaticFiles", commandLine.Root);

if (commandLine.Drain > TimeSpan.Zero)
{
    var draining = app.Services.GetRequiredService<ShutdownDrain>();
    app.Use(draining.InvokeAsync);
}

// First (after --drain's header), so that it sees every gRPC call's end, whatever answers it.
var grpcCalls = new GrpcCallCounter();
app.Use(grpcCalls.CountAsync);

if (commandLine.Static == StaticMode.Stock)
{
    var siteFiles = new PhysicalFileProvider(commandLine.Root);
    app.UseDefaultFiles(new DefaultFilesOptions { FileProvider = siteFiles });
    app.UseStaticFiles(new StaticFileOptions { FileProvider = siteFiles });
}
else
{
    var ampedOptions = new AmpedStaticFileOptions();
    app.Configuration.GetSection(SampleConfiguration.AmpedStaticFilesSection).Bind(ampedOptions);
    // --root and --static name the folder and the mode, whatever the section says.
    ampedOptions.RootPath = commandLine.Root;
    ampedOptions.Mode = commandLine.Static == StaticMode.Sped ? AmpedMode.Sped : AmpedMode.Amped;
    app.UseAmpedStaticFiles(ampedOptions);
}
// Before the endpoints: it lets /ws accept WebSocket upgrades (HTTP/1.1) and extended CONNECT (HTTP/2).
app.UseWebSockets();
app.MapSampleEndpoints(grpcCalls);
app.MapTransportMetrics();
app.MapGrpcService<GreeterService>();

await app.RunAsync();
return 0;

static int Fail(string message)
{
    Console.Error.WriteLine($"WebApp: {message}");
    return 2;
}
