using System.Globalization;
using System.Net;

namespace WebApp;

/// <summary>The Kestrel transport the sample runs on.</summary>
internal enum TransportKind
{
    Epoll,
    Sockets,
}

/// <summary>The static-file middleware the sample asks for.</summary>
internal enum StaticMode
{
    Amped,
    Sped,
    Stock,
}

/// <summary>
/// The sample's own flags. They are taken out of the argument list before the rest reaches ASP.NET Core
/// configuration: the command-line configuration provider rejects a bare switch such as <c>--inline</c>.
/// </summary>
internal sealed class SampleCommandLine
{
    public const string DefaultUrl = "http://127.0.0.1:5000";

    public const string Usage = """
        Usage: WebApp [options] [ASP.NET Core configuration arguments]

        Options:
          --transport epoll|sockets   Kestrel transport (default: epoll).
          --inline                    Sets UnsafePreferInlineScheduling on the chosen transport: Kestrel and the
                                      app run on the transport's I/O threads instead of the .NET thread pool.
          --root DIR                  Folder of the static site (default: wwwroot next to WebApp.dll). A relative
                                      DIR is relative to the current directory (under `dotnet run`: the
                                      project folder).
          --static amped|sped|stock   Static-file middleware (default: amped): UseAmpedStaticFiles in AMPED or
                                      SPED mode, or UseDefaultFiles + UseStaticFiles.
          --reuse-port ADDRESS:PORT   Listens on ADDRESS:PORT (e.g. 127.0.0.1:8080) through a socket of its own
                                      with SO_REUSEPORT set, so that a second process started with the same
                                      option shares the port: the new one is started, then the old one stopped.
                                      Connections still queued in the stopped one's backlog are reset; see
                                      deploy/README.md. Not with --urls.
          --drain SECONDS             On SIGTERM, before Kestrel stops: stops accepting (epoll transport) and
                                      serves on for SECONDS with "Connection: close" on every HTTP/1.x response,
                                      so that a proxy in front stops reusing its keep-alive connections to this
                                      process before they are closed (default: 0, Kestrel stops at once). See
                                      deploy/README.md.
          --help, -h                  Prints this help.

        Every other argument reaches ASP.NET Core configuration unchanged, for example:
          --urls http://127.0.0.1:8080
          --urls http://unix:/tmp/webapp.sock
          --Kestrel:EndpointDefaults:Protocols Http2
          --EpollTransport:ReadBudgetPerTurn 16384     (any EpollTransportOptions property)
          --AmpedStaticFiles:FileCacheEntries 0        (any AmpedStaticFileOptions property but RootPath
                                                        and Mode, which --root and --static set)
        With no URL configured the sample listens on http://127.0.0.1:5000.

        Started by systemd socket activation (LISTEN_FDS, and LISTEN_PID naming this process) the sample serves
        the listening sockets it inherits (fd 3 onwards) and binds nothing else; --urls and --reuse-port are then
        errors. deploy/ has the units (webapp@.socket, webapp@.service) and the nginx configuration.

        Endpoints: GET /plaintext, GET /json, POST /echo (streams the request body back), and the static site.
        WebSocket: /ws echoes each text or binary message whole (up to 4 MiB) and answers the close handshake.
        gRPC: greet.Greeter/SayHello (Protos/greet.proto). gRPC needs HTTP/2: an https URL, or on a cleartext one
        --Kestrel:EndpointDefaults:Protocols Http2. GET /grpc/calls counts the calls answered, by grpc-status.

        """;

    private SampleCommandLine(string root) => Root = root;

    public TransportKind Transport { get; private set; } = TransportKind.Epoll;

    public bool Inline { get; private set; }

    public string Root { get; private set; }

    public StaticMode Static { get; private set; } = StaticMode.Amped;

    public bool ShowHelp { get; private set; }

    /// <summary>Where --reuse-port listens (a socket of the sample's own, with SO_REUSEPORT); null without the option.</summary>
    public IPEndPoint? ReusePort { get; private set; }

    /// <summary>How long --drain serves on with "Connection: close" after SIGTERM; zero without the option.</summary>
    public TimeSpan Drain { get; private set; }

    /// <summary>The arguments that are not the sample's, in their original order.</summary>
    public string[] HostArgs { get; private set; } = [];

    public static string DefaultRoot => Path.Combine(AppContext.BaseDirectory, "wwwroot");

    /// <exception cref="CommandLineException">An unknown value, a missing value or a missing folder.</exception>
    public static SampleCommandLine Parse(string[] args)
    {
        var result = new SampleCommandLine(DefaultRoot);
        var hostArgs = new List<string>(args.Length);

        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            var (name, inlineValue) = SplitOption(arg);
            switch (name)
            {
                case "--help" or "-h":
                    result.ShowHelp = true;
                    break;
                case "--inline":
                    if (inlineValue is not null)
                    {
                        throw new CommandLineException($"--inline is a bare flag; remove '={inlineValue}'.");
                    }
                    result.Inline = true;
                    break;
                case "--transport":
                    result.Transport = ParseChoice<TransportKind>(name, TakeValue(args, ref i, name, inlineValue));
                    break;
                case "--static":
                    result.Static = ParseChoice<StaticMode>(name, TakeValue(args, ref i, name, inlineValue));
                    break;
                case "--root":
                    result.Root = ParseRoot(TakeValue(args, ref i, name, inlineValue));
                    break;
                case "--drain":
                    result.Drain = ParseSeconds(name, TakeValue(args, ref i, name, inlineValue));
                    break;
                case "--reuse-port":
                    result.ReusePort = ParseEndPoint(name, TakeValue(args, ref i, name, inlineValue));
                    break;
                default:
                    hostArgs.Add(arg);
                    break;
            }
        }

        result.HostArgs = [.. hostArgs];
        return result;
    }

    private static (string Name, string? Value) SplitOption(string arg)
    {
        if (!arg.StartsWith("--", StringComparison.Ordinal))
        {
            return (arg, null);
        }
        var equals = arg.IndexOf('=');
        return equals < 0
            ? (arg.ToLowerInvariant(), null)
            : (arg[..equals].ToLowerInvariant(), arg[(equals + 1)..]);
    }

    private static string TakeValue(string[] args, ref int i, string name, string? inlineValue)
    {
        if (inlineValue is not null)
        {
            return inlineValue;
        }
        if (i + 1 >= args.Length || args[i + 1].StartsWith("--", StringComparison.Ordinal))
        {
            throw new CommandLineException($"{name} needs a value.");
        }
        return args[++i];
    }

    private static T ParseChoice<T>(string name, string value)
        where T : struct, Enum
    {
        // Compared by name: Enum.TryParse would also take numbers and comma lists ("--transport 1").
        foreach (var choice in Enum.GetValues<T>())
        {
            if (string.Equals(choice.ToString(), value, StringComparison.OrdinalIgnoreCase))
            {
                return choice;
            }
        }
        var names = string.Join('|', Enum.GetNames<T>()).ToLowerInvariant();
        throw new CommandLineException($"{name} '{value}' is not one of {names}.");
    }

    private static TimeSpan ParseSeconds(string name, string value)
        => double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && seconds >= 0 && seconds <= 3600
            ? TimeSpan.FromSeconds(seconds)
            : throw new CommandLineException($"{name} takes a number of seconds from 0 to 3600, not '{value}'.");

    private static IPEndPoint ParseEndPoint(string name, string value)
    {
        // An address and a port: IPEndPoint.TryParse would take a bare address with port 0.
        if (!IPEndPoint.TryParse(value, out var endPoint) || endPoint.Port == 0 || !value.Contains(':', StringComparison.Ordinal))
        {
            throw new CommandLineException($"{name} '{value}' is not ADDRESS:PORT with a port above 0 (e.g. 127.0.0.1:8080, [::1]:8080).");
        }
        return endPoint;
    }

    private static string ParseRoot(string value)
    {
        var root = Path.GetFullPath(value);
        if (!Directory.Exists(root))
        {
            throw new CommandLineException($"--root '{value}': the folder '{root}' does not exist.");
        }
        return root;
    }
}

/// <summary>A command line the sample cannot run with; the message is meant for the user.</summary>
internal sealed class CommandLineException(string message) : Exception(message);
