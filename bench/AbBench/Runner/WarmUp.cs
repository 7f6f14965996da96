namespace AbBench;

/// <summary>
/// The warm-up until steady of a shared server. On one core the runtime takes 20–60 s of load to tier its code up
/// (tier 0, instrumented, optimized), with plateaus on the way that look steady, and req/s about doubles: the
/// warm-up watches the tiered-compilation threads' CPU time rather than req/s alone.
/// </summary>
internal static class WarmUp
{
    /// <summary>The most warm-up a server gets by default.</summary>
    public const int DefaultMostSeconds = 90;
    public const int WindowSeconds = 5;
    public const int MinSeconds = 15;
    private const double SteadyWithin = 0.03;

    /// <summary>The warm-up each run of a shared server gets with its own load (new connections, maybe a new count).</summary>
    public const int PerRunSeconds = 3;

    /// <summary>How the servers were started and warmed up, for the result's notes.</summary>
    public static string Note(string loadTool, int most) =>
        $"One server process per variant for the whole scenario, all on the server CPUs, started together; each warmed up once with {WindowSeconds} s {loadTool} windows until the runtime's tiered-compilation threads used no CPU in a window and its req/s is within {SteadyWithin:P0} of the one before, at least {Math.Min(MinSeconds, most)} s and at most {most} s";

    /// <summary>
    /// Windows of load until no tiered-compilation thread used CPU in the window and its req/s is within
    /// <see cref="SteadyWithin"/> of the window before; at least <see cref="MinSeconds"/> and at most
    /// <paramref name="most"/> seconds. Returns the seconds used.
    /// </summary>
    public static async Task<int> UntilSteadyAsync(IServer server, int most, Func<IServer, int, Task<double>> window)
    {
        var warmedUp = 0;
        double previous = 0;
        var tiering = server.ReadTieringTicks();
        while (warmedUp < most)
        {
            var seconds = Math.Min(WindowSeconds, most - warmedUp);
            var rps = await window(server, seconds);
            warmedUp += seconds;
            var nowTiering = server.ReadTieringTicks();
            var jitBusy = nowTiering.Any(t => !tiering.TryGetValue(t.Key, out var before) || t.Value > before);
            tiering = nowTiering;
            if (warmedUp >= MinSeconds && !jitBusy && previous > 0 && Math.Abs(rps - previous) <= SteadyWithin * previous)
            {
                break;
            }
            previous = rps;
        }
        return warmedUp;
    }

    /// <summary>
    /// A warm-up window of wrk load: its req/s, or a failure if no request completed. The load goes to the server's
    /// port, or to <paramref name="port"/> (a proxy in front of the server).
    /// </summary>
    public static Func<IServer, int, Task<double>> WrkWindow(BenchContext context, WrkLoad load, int? port = null) => async (server, seconds) =>
    {
        var w = await Wrk.RunAsync(context, load, port ?? server.Port, seconds, context.Cancellation);
        return w.Requests > 0 ? w.RequestsPerSecond : throw new BenchException($"the warm-up failed completely: {w.Problem()}");
    };

    /// <summary>A warm-up window of h2load load (no warm-up of its own): its req/s, or a failure if no request succeeded.</summary>
    public static Func<IServer, int, Task<double>> H2LoadWindow(BenchContext context, H2LoadRequest request, int connections) => async (server, seconds) =>
    {
        var r = await H2Load.RunAsync(context, request, server.Port, connections, seconds, 0, () => { }, () => { }, context.Cancellation);
        return r.Succeeded > 0 ? r.RequestsPerSecond : throw new BenchException($"the warm-up failed completely: {r.Problem()}");
    };
}
