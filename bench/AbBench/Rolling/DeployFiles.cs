using System.Text.RegularExpressions;

namespace AbBench;

/// <summary>
/// What the rolling scenario takes from deploy/, so that it runs what a user copies: the socket unit's ListenStream=,
/// the service unit's ExecStart=, and the nginx configuration with the upstream block. Only the places are changed: the
/// instances' ports (the units' instance names) become free ones, the published app the built one, nginx's listen a
/// free port on 127.0.0.1.
/// </summary>
internal sealed partial class DeployFiles
{
    /// <summary>Where the units expect the published sample, and the dotnet they run it with.</summary>
    public const string PublishedApp = "/opt/webapp/WebApp.dll";
    public const string UnitDotnet = "/usr/bin/dotnet";

    public const string SocketUnit = "deploy/webapp@.socket";
    public const string ServiceUnit = "deploy/webapp@.service";
    public const string NginxConf = "deploy/nginx-upstream.conf";

    private DeployFiles(string listenStream, IReadOnlyList<string> execStart, string nginx, IReadOnlyList<string> upstreamSockets)
    {
        ListenStream = listenStream;
        ExecStart = execStart;
        Nginx = nginx;
        UpstreamPorts = upstreamSockets;
    }

    /// <summary>The socket unit's ListenStream=: <c>127.0.0.1:%i</c>, the instance named by its port.</summary>
    public string ListenStream { get; }

    /// <summary>The service unit's ExecStart=, split at spaces (it quotes nothing).</summary>
    public IReadOnlyList<string> ExecStart { get; }

    /// <summary>deploy/nginx-upstream.conf as it is.</summary>
    public string Nginx { get; }

    /// <summary>The ports of the upstream's <c>server 127.0.0.1:PORT</c> lines, in order: one per instance.</summary>
    public IReadOnlyList<string> UpstreamPorts { get; }

    public static DeployFiles Read(string repoRoot)
    {
        string Text(string relative)
        {
            var path = Path.Combine(repoRoot, relative);
            return File.Exists(path) ? File.ReadAllText(path) : throw new BenchException($"{relative} is missing: the rolling scenario runs deploy/'s units and nginx configuration.");
        }

        var listen = UnitValue(Text(SocketUnit), "ListenStream", SocketUnit);
        if (listen != ListenTemplate)
        {
            throw new BenchException($"{SocketUnit}: ListenStream={listen}, where the harness expects {ListenTemplate} (the instance named by its port).");
        }
        var exec = UnitValue(Text(ServiceUnit), "ExecStart", ServiceUnit).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (exec.Length < 2 || exec[0] != UnitDotnet || exec[1] != PublishedApp)
        {
            throw new BenchException($"{ServiceUnit}: ExecStart= must start with '{UnitDotnet} {PublishedApp}', the places the harness replaces.");
        }
        if (exec.Any(a => a.StartsWith("--urls", StringComparison.OrdinalIgnoreCase) || a.StartsWith("--reuse-port", StringComparison.OrdinalIgnoreCase)))
        {
            throw new BenchException($"{ServiceUnit}: ExecStart= names --urls or --reuse-port; a socket-activated service serves its inherited socket alone.");
        }

        var nginx = Text(NginxConf);
        var sockets = UpstreamServer().Matches(nginx).Select(m => m.Groups[1].Value).ToArray();
        if (sockets.Length < 2)
        {
            throw new BenchException($"{NginxConf}: the upstream names {sockets.Length} instance(s) on 127.0.0.1 ports; the scenario restarts at least two.");
        }
        if (Listen().Matches(nginx).Count == 0)
        {
            throw new BenchException($"{NginxConf}: no listen directive to replace.");
        }
        return new DeployFiles(listen, exec, nginx, sockets);
    }

    private const string ListenTemplate = "127.0.0.1:%i";

    /// <summary>ListenStream= for an instance on <paramref name="port"/> (a free one here, in place of the unit's instance name).</summary>
    public string ListenAddress(int port) => ListenStream.Replace("%i", port.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);

    /// <summary>ExecStart='s arguments after the app, e.g. <c>--EpollTransport:Backlog 4096</c>.</summary>
    public IReadOnlyList<string> AppArguments => [.. ExecStart.Skip(2)];

    /// <summary>
    /// nginx-upstream.conf for this machine: nginx listens on 127.0.0.1:<paramref name="port"/>; each upstream server
    /// is <paramref name="upstream"/>(instance), counted from 1: <c>127.0.0.1:PORT</c>.
    /// </summary>
    public string NginxFor(int port, Func<int, string> upstream)
    {
        var instance = 0;
        var text = UpstreamServer().Replace(Nginx, _ => $"server {upstream(++instance)}");
        var listens = 0;
        return Listen().Replace(text, _ => listens++ == 0 ? $"listen 127.0.0.1:{port};" : "# (the harness listens once)");
    }

    private static string UnitValue(string unit, string key, string file)
    {
        var values = unit.Split('\n')
            .Select(l => l.Trim())
            .Where(l => l.StartsWith(key + "=", StringComparison.Ordinal))
            .Select(l => l[(key.Length + 1)..].Trim())
            .ToArray();
        return values.Length == 1 ? values[0] : throw new BenchException($"{file}: expected one {key}= line, found {values.Length}.");
    }

    [GeneratedRegex(@"(?m)(?<=^\s*)server\s+127\.0\.0\.1:(\d+)")]
    private static partial Regex UpstreamServer();

    [GeneratedRegex(@"(?m)(?<=^\s*)listen\s+[^;]+;")]
    private static partial Regex Listen();
}
