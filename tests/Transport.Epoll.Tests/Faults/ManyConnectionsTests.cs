using System.Diagnostics;
using System.Globalization;
using Xunit.Abstractions;

namespace EpollTransport.Tests.Faults;

/// <summary>
/// Thousands of keep-alive connections held open at once and served. The clients live in the test process, so every
/// connection costs two fds: 9,000 connections (not 10,000) keep the total under the 20,000 RLIMIT_NOFILE of the
/// machines this runs on, with room for the runtime and the transport's fd reserve.
/// </summary>
public sealed class ManyConnectionsTests(ITestOutputHelper output)
{
    internal const int Connections = 9_000;
    private const int ConnectBatch = 250;
    private const int SecondRequestEvery = 10;

    // The epoll transport in both scheduling modes; Sockets adds nothing here but run time (the assertions are
    // absolute: every connection answered, and held by Kestrel and the reactors).
    public static TheoryData<string> Transports => new() { KestrelHost.Epoll, KestrelHost.EpollInline };

    [Trait("Category", "Heavy")]
    [ManyDescriptorsTheory]
    [MemberData(nameof(Transports))]
    public async Task NineThousandKeepAliveConnectionsAreHeldAndServed(string transport)
    {
        var stopwatch = Stopwatch.StartNew();
        await using var server = await FaultServer.StartAsync(transport, FaultServer.MapOk, output);
        using var cts = new CancellationTokenSource(WaitLimit * 4);
        var clients = new RawHttpClient[Connections];
        try
        {
            // Connect and exchange one request on each, a batch at a time (the listen backlog is 512), keeping all.
            for (var start = 0; start < Connections; start += ConnectBatch)
            {
                await Task.WhenAll(Enumerable.Range(start, Math.Min(ConnectBatch, Connections - start)).Select(async i =>
                {
                    clients[i] = await RawHttpClient.ConnectAsync(server.BaseAddress, cts.Token, bufferSize: 512);
                    await FaultServer.AssertOkAsync(clients[i], i.ToString(CultureInfo.InvariantCulture), cts.Token);
                })).WaitAsync(cts.Token);
            }
            var connected = stopwatch.Elapsed;

            // All of them are open at once, in Kestrel and in the transport.
            Assert.Equal(Connections, server.Connections.Open);
            if (server.IsEpoll)
            {
                Assert.Equal(Connections, server.ReactorActiveConnections());
            }

            // A second request on a sample of them, all at once: each answers on its own connection.
            await Task.WhenAll(Enumerable.Range(0, Connections / SecondRequestEvery).Select(k =>
            {
                var i = k * SecondRequestEvery + k % SecondRequestEvery;
                return FaultServer.AssertOkAsync(clients[i], $"again-{i}", cts.Token);
            })).WaitAsync(cts.Token);
            Assert.Equal(Connections, server.Connections.Total);
            var served = stopwatch.Elapsed;

            foreach (var client in clients)
            {
                client.Dispose();
            }
            await server.AssertAllConnectionsGoneAsync(total: Connections);
            output.WriteLine($"[{transport}] {Connections} connections opened and served in {connected.TotalSeconds:F1} s, "
                + $"second requests done at {served.TotalSeconds:F1} s, all closed at {stopwatch.Elapsed.TotalSeconds:F1} s.");
        }
        finally
        {
            foreach (var client in clients)
            {
                client?.Dispose();
            }
        }
    }
}

/// <summary>
/// A theory that is skipped, with the reason, when the process may not open the fds <see cref="ManyConnectionsTests"/>
/// needs: both ends of every connection, plus headroom for the runtime, the test host and the transport's reserve.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class ManyDescriptorsTheoryAttribute : TheoryAttribute
{
    private const int Headroom = 1024;

    public ManyDescriptorsTheoryAttribute()
    {
        if (!OperatingSystem.IsLinux())
        {
            Skip = "Linux only.";
            return;
        }
        // .NET raises the soft limit to the hard one when the process starts: the soft limit is what the test gets.
        var (soft, _) = Limits();
        if (soft < Needed)
        {
            Skip = $"Needs {Needed} file descriptors ({ManyConnectionsTests.Connections} connections with both ends in this process, "
                + $"{OpenDescriptors()} fds open now, {Headroom} headroom); RLIMIT_NOFILE is {soft}.";
        }
    }

    private static long Needed => 2L * ManyConnectionsTests.Connections + OpenDescriptors() + Headroom;

    /// <summary>The soft and hard "Max open files" of /proc/self/limits ("unlimited" as long.MaxValue).</summary>
    private static (long Soft, long Hard) Limits()
    {
        var line = File.ReadLines("/proc/self/limits").First(l => l.StartsWith("Max open files", StringComparison.Ordinal));
        var fields = line["Max open files".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        static long Parse(string value) => value == "unlimited" ? long.MaxValue : long.Parse(value, CultureInfo.InvariantCulture);
        return (Parse(fields[0]), Parse(fields[1]));
    }

    private static int OpenDescriptors() => Directory.GetFileSystemEntries("/proc/self/fd").Length;
}
