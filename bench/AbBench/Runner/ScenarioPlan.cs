namespace AbBench;

/// <summary>How long the servers of a scenario live.</summary>
internal enum ServerLifetime
{
    /// <summary>One server per variant for the whole scenario, all started and warmed up before any load; rounds interleave the variants.</summary>
    Shared,

    /// <summary>A fresh server for every run (idle: its RSS before and after must be the run's alone); rounds interleave the variants.</summary>
    PerRun,

    /// <summary>One variant after the other, each on its own server through all its rounds (soak: nothing else runs beside it).</summary>
    OneAtATime,
}

/// <summary>What a scenario declares; the <see cref="Runner"/> runs it.</summary>
internal sealed class ScenarioPlan
{
    /// <summary>What is reported: its variants are the servers' in order, the baseline first; notes and commands go in the result file.</summary>
    public required ScenarioResult Result { get; init; }

    /// <summary>How to start the server of each variant of <see cref="Result"/>, in the same order.</summary>
    public required IReadOnlyList<ServerSpec> Servers { get; init; }

    public ServerLifetime Lifetime { get; init; } = ServerLifetime.Shared;

    /// <summary>The warm-up until steady of the servers that have a JIT (shared servers only); null for none.</summary>
    public WarmUpPlan? WarmUp { get; init; }

    /// <summary>The sub-results, in order: each runs its rounds, the variants interleaved, before the next.</summary>
    public required IReadOnlyList<CasePlan> Cases { get; init; }

    /// <summary>Rounds per case: --rounds unless the scenario counts otherwise (soak: minutes).</summary>
    public int? Rounds { get; init; }

    /// <summary>About how long one run takes, without the warm-up: for the estimate before the first run.</summary>
    public required int SecondsPerRun { get; init; }

    /// <summary>Called once a server answers, before any load: a content check, a first sample.</summary>
    public Func<IServer, Variant, Task>? AfterStart { get; init; }

    /// <summary>
    /// Shared servers only: called once every server answers (and <see cref="AfterStart"/> is done), with the servers
    /// in the order of <see cref="Servers"/>, before the warm-up (proxy: nginx started in front of them).
    /// </summary>
    public Func<IReadOnlyList<IServer>, Task>? AfterAllStart { get; init; }

    /// <summary>Called once a server is warmed up (disk: it moves into the throttled group).</summary>
    public Action<IServer>? AfterWarmUp { get; init; }

    /// <summary>Called when every run is done and none was refused: sections beyond the standard tables.</summary>
    public Action? Finish { get; init; }

    /// <summary>What the scenario made for its runs (a temporary site, a throttle), disposed after the servers stop.</summary>
    public List<IDisposable> Resources { get; } = [];
}

/// <summary>A server of a variant: how to start one (on a free port, answering before it returns).</summary>
internal sealed record ServerSpec(Variant Variant, Func<CancellationToken, Task<IServer>> StartAsync)
{
    /// <summary>Whether the server runs .NET code that must tier up: nginx gets only the per-run warm-up.</summary>
    public bool WarmsUp { get; init; } = true;

    /// <summary>
    /// The sample's server for <paramref name="variant"/>: its arguments, then <paramref name="extraArgs"/>; on https
    /// with <paramref name="tls"/>, which <paramref name="extraArgs"/> then name for Kestrel; also on the Unix socket
    /// <paramref name="unixSocket"/> when one is given.
    /// </summary>
    public static ServerSpec Sample(BenchContext context, Variant variant, IReadOnlyList<string> extraArgs, bool http2 = false, SelfSignedCertificate? tls = null,
        string? unixSocket = null) =>
        new(variant, async ct => await ServerProcess.StartAsync(context, [.. variant.ArgList, .. extraArgs], http2, tls, unixSocket, ct));
}

/// <summary>
/// The warm-up of a shared server: windows of <paramref name="Window"/> (which loads the server for the seconds given
/// and returns its req/s) until steady, at most <paramref name="MostSeconds"/>; <paramref name="Load"/> names that
/// load for the result file, e.g. "at 256 connections".
/// </summary>
internal sealed record WarmUpPlan(int MostSeconds, string Load, Func<IServer, int, Task<double>> Window);

/// <summary>One sub-result and how one of its runs is measured.</summary>
internal sealed record CasePlan(CaseResult Result, Func<IServer, Variant, int, Task<RunOutcome>> RunOnceAsync)
{
    /// <summary>Called before the case's first run (disk: the cold set read into the page cache).</summary>
    public Func<Task>? BeforeAsync { get; init; }

    /// <summary>What a round is called in the progress and the refusals: "round", or "minute" for soak.</summary>
    public string RoundName { get; init; } = "round";
}

/// <summary>
/// What one run gave: the run to record (null: nothing to record, such as soak's warm-up minute), what went wrong
/// (a reason to refuse), and the line to print instead of the standard figures, if any.
/// </summary>
internal sealed record RunOutcome(Run? Run, string? Problem, string? Line = null);
