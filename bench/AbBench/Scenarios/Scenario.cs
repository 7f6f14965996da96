namespace AbBench;

/// <summary>The load generators a scenario needs on the machine (tls needs both), and the proxy it cannot run without.</summary>
[Flags]
internal enum LoadTool
{
    /// <summary>wrk (idle also uses it for its warm-up).</summary>
    Wrk = 1,

    /// <summary>h2load, from nghttp2.</summary>
    H2Load = 2,

    /// <summary>nginx, in front of the servers (proxy). static runs without it: there it is only a reference.</summary>
    Nginx = 4,
}

/// <summary>
/// One benchmark: what it declares (variants, servers, warm-up, cases, the measurement of one run, the sections it
/// adds at the end) in a <see cref="ScenarioPlan"/>. The <see cref="Runner"/> does the rest: starting and stopping
/// servers, the warm-up, rounds with the variants interleaved, refusals, progress and the report.
/// </summary>
internal abstract class Scenario
{
    /// <summary>The name on the command line and in the result files' names.</summary>
    public abstract string Name { get; }

    /// <summary>One line for --help.</summary>
    public abstract string Summary { get; }

    public virtual LoadTool Tool => LoadTool.Wrk;

    /// <summary>Whether <c>all</c> runs it.</summary>
    public virtual bool InAll => true;

    /// <summary>
    /// Checks what the scenario needs, makes what it serves, and says what to run. Anything it makes that must
    /// outlive the runs goes into <see cref="ScenarioPlan.Resources"/>, which the runner disposes at the end.
    /// </summary>
    public abstract Task<ScenarioPlan> PlanAsync(BenchContext context);
}
